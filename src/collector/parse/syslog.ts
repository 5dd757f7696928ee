// Parser "syslog": RFC 5424 and BSD (RFC 3164) messages, as syslog daemons send them over the network and write them
// to files, into ECS `log.syslog.*` fields.
//
//   <165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3"] An application event
//   <34>Oct 11 22:14:15 mymachine su[230]: 'su root' failed for lonvick on /dev/pts/8
//   Oct 11 22:14:15 mymachine su[230]: …                      (a file written by rsyslog's traditional format)
//   2003-10-11T22:14:15.003+02:00 mymachine su[230]: …        (rsyslog's high-precision file format)
import { normalizeLevel, parseTimestamp } from "../../record.js";
import { isBlank, stripCR } from "./text.js";
import type { ParsedLine } from "./types.js";

const FACILITIES = [
  "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv", "ftp", "ntp",
  "security", "console", "solaris-cron", "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
] as const;
const SEVERITIES = ["Emergency", "Alert", "Critical", "Error", "Warning", "Notice", "Informational", "Debug"] as const;
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
/** `Mmm dd hh:mm:ss` (the day space-padded), optionally with the year after the day (`Mmm dd yyyy hh:mm:ss`). */
const BSD_TIME = /^([A-Z][a-z]{2}) ( ?\d{1,2})(?: (\d{4}))? (\d{2}):(\d{2}):(\d{2})(?= |$)/;
/** A BSD tag: the program, then `[pid]` and/or `:`, as in `sshd[812]:` or `kernel:`. */
const TAG = /^([^\s[\]:]{1,64})(?:\[([^\]\s]{1,32})\])?:(?: |$)/;
const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * Parse one syslog message.
 *
 * - `<PRI>` gives `log.syslog.priority`, `facility.{code,name}` and `severity.{code,name}`; the severity sets
 *   `log.level` (0–2 fatal, 3 error, 4 warn, 5–6 info, 7 debug). A message without one (a file) has neither.
 * - RFC 5424: `version`, `hostname`, `appname`, `procid`, `msgid` (`-` means absent) and `structured_data` as
 *   `{ "<SD-ID>": { "<name>": "<value>" } }` (a repeated name keeps its last value); a leading BOM is dropped from
 *   the message.
 * - BSD: `Mmm dd hh:mm:ss` (or an RFC 3339 timestamp, as rsyslog writes with high precision), the host, and the tag
 *   `app[pid]:` (`appname`, `procid`). A BSD timestamp has no year and no zone: it is read in `timeZone` (UTC unless
 *   the parser spec names one, as every timestamp without a zone is read here), in the current year, or the previous
 *   one when that would put it more than a day ahead.
 *   A BSD message with `<PRI>` but none of the rest is kept whole as the message (RFC 3164 4.3.3).
 * - `host.name` is the sender's host name, `process.name` and `process.pid` the app and a numeric proc id.
 * - A line that is not syslog is a parse error (`not_syslog`) and stays a plain message.
 */
export function parseSyslog(input: string, now = Date.now(), timeZone?: string): ParsedLine {
  const line = stripCR(input);
  if (isBlank(line)) return { line, fields: undefined, blank: true };
  let i = 0;
  let pri: number | undefined;
  if (line.charCodeAt(0) === 60) {
    const close = line.indexOf(">");
    if (close < 2 || close > 4 || !digits(line, 1, close) || (close > 2 && line.charCodeAt(1) === 48)) return notSyslog(line);
    pri = Number(line.slice(1, close));
    if (pri > 191) return notSyslog(line);
    i = close + 1;
  }
  const syslog: Record<string, unknown> = {};
  const fields: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  if (pri !== undefined) {
    const facility = pri >> 3;
    const severity = pri & 7;
    syslog["priority"] = pri;
    syslog["facility"] = { code: facility, name: FACILITIES[facility] };
    syslog["severity"] = { code: severity, name: SEVERITIES[severity] };
    fields["log.level"] = normalizeLevel(severity);
  }
  const v = /^([1-9]\d?) /.exec(line.slice(i, i + 3));
  const ok = pri !== undefined && v !== null ? rfc5424(line, i + v[0].length, Number(v[1]), fields, syslog) : bsd(line, i, pri !== undefined, now, timeZone, fields, syslog);
  if (!ok) return notSyslog(line);
  if (Object.keys(syslog).length > 0) fields["log"] = { syslog };
  const host = syslog["hostname"];
  if (typeof host === "string") fields["host"] = host;
  const app = syslog["appname"];
  if (typeof app === "string") {
    const pid = syslog["procid"];
    fields["process"] = typeof pid === "string" && /^\d{1,10}$/.test(pid) && Number(pid) <= 0x7fffffff ? { name: app, pid: Number(pid) } : { name: app };
  }
  return { line, fields };
}

function notSyslog(line: string): ParsedLine {
  return { line, fields: undefined, error: "not_syslog" };
}

function digits(s: string, from: number, to: number): boolean {
  for (let k = from; k < to; k++) {
    const c = s.charCodeAt(k);
    if (c < 48 || c > 57) return false;
  }
  return to > from;
}

/** RFC 5424 after `<PRI>VERSION SP`: TIMESTAMP HOSTNAME APP-NAME PROCID MSGID STRUCTURED-DATA [MSG]. */
function rfc5424(line: string, i: number, version: number, fields: Record<string, unknown>, syslog: Record<string, unknown>): boolean {
  syslog["version"] = version;
  const header: string[] = [];
  for (let k = 0; k < 5; k++) {
    const sp = line.indexOf(" ", i);
    if (sp <= i) return false;
    header.push(line.slice(i, sp));
    i = sp + 1;
  }
  const [timestamp, hostname, appname, procid, msgid] = header as [string, string, string, string, string];
  if (timestamp !== "-") fields["@timestamp"] = parseTimestamp(timestamp) ?? timestamp;
  if (hostname !== "-") syslog["hostname"] = hostname;
  if (appname !== "-") syslog["appname"] = appname;
  if (procid !== "-") syslog["procid"] = procid;
  if (msgid !== "-") syslog["msgid"] = msgid;
  if (line.charCodeAt(i) === 45 /* - */) i++;
  else {
    const sd = structuredData(line, i);
    if (sd === undefined) return false;
    syslog["structured_data"] = sd.value;
    i = sd.end;
  }
  if (i < line.length) {
    if (line.charCodeAt(i) !== 32) return false;
    i++;
  }
  let message = line.slice(i);
  if (message.charCodeAt(0) === 0xfeff) message = message.slice(1);
  fields["message"] = message;
  return true;
}

/** One or more `[SD-ID param="value" …]` elements from `i`; undefined when malformed. */
function structuredData(line: string, i: number): { value: Record<string, Record<string, string>>; end: number } | undefined {
  const value = Object.create(null) as Record<string, Record<string, string>>;
  if (line.charCodeAt(i) !== 91) return undefined;
  while (line.charCodeAt(i) === 91 /* [ */) {
    i++;
    const idEnd = nameEnd(line, i);
    if (idEnd === i) return undefined;
    const id = line.slice(i, idEnd);
    const params = (value[id] ??= Object.create(null) as Record<string, string>);
    i = idEnd;
    while (line.charCodeAt(i) === 32) {
      i++;
      const nEnd = nameEnd(line, i);
      if (nEnd === i || line.charCodeAt(nEnd) !== 61 || line.charCodeAt(nEnd + 1) !== 34) return undefined;
      const name = line.slice(i, nEnd);
      i = nEnd + 2;
      let text = "";
      let from = i;
      for (;;) {
        if (i >= line.length) return undefined;
        const c = line.charCodeAt(i);
        if (c === 34) break;
        // Only `\"`, `\\` and `\]` are escapes; any other backslash is kept as written.
        if (c === 92 && (line.charCodeAt(i + 1) === 34 || line.charCodeAt(i + 1) === 92 || line.charCodeAt(i + 1) === 93)) {
          text += line.slice(from, i);
          from = i + 1;
          i += 2;
          continue;
        }
        i++;
      }
      text += line.slice(from, i);
      i++;
      if (name !== "__proto__") params[name] = text;
    }
    if (line.charCodeAt(i) !== 93 /* ] */) return undefined;
    i++;
    if (id === "__proto__") delete value[id];
  }
  return { value, end: i };
}

/** End of an SD-ID or PARAM-NAME: printable ASCII except `=`, SP, `]` and `"`. */
function nameEnd(line: string, i: number): number {
  const start = i;
  while (i < line.length && i - start < 32) {
    const c = line.charCodeAt(i);
    if (c <= 32 || c >= 127 || c === 61 || c === 93 || c === 34) break;
    i++;
  }
  return i;
}

/** BSD (RFC 3164) from `i`: TIMESTAMP HOSTNAME TAG: MSG, leniently. */
function bsd(line: string, i: number, hasPri: boolean, now: number, timeZone: string | undefined, fields: Record<string, unknown>, syslog: Record<string, unknown>): boolean {
  let rest = line.slice(i);
  let timestamp: string | undefined;
  const m = BSD_TIME.exec(rest);
  if (m !== null) {
    const month = MONTHS.indexOf(m[1]!);
    const day = Number(m[2]!.trim());
    const year = m[3];
    if (month >= 0 && day >= 1 && day <= 31) {
      timestamp = bsdTime(year === undefined ? undefined : Number(year), month, day, Number(m[4]), Number(m[5]), Number(m[6]), now, timeZone);
    }
    if (timestamp === undefined) return hasPri && whole(rest, fields);
    rest = rest.slice(m[0].length);
  } else {
    const sp = rest.indexOf(" ");
    const token = sp < 0 ? rest : rest.slice(0, sp);
    const c = token.charCodeAt(0);
    timestamp = c >= 48 && c <= 57 && token.length >= 19 ? parseTimestamp(token) : undefined;
    if (timestamp === undefined) return hasPri && whole(rest, fields);
    rest = sp < 0 ? "" : rest.slice(sp);
  }
  fields["@timestamp"] = timestamp;
  // Both timestamp forms end at a space or at the end of the line.
  rest = rest.slice(1);
  // The host, unless the next token is already the tag (some senders leave the host out).
  let tag = TAG.exec(rest);
  if (tag === null) {
    const sp = rest.indexOf(" ");
    const host = sp < 0 ? rest : rest.slice(0, sp);
    if (host.length > 0) syslog["hostname"] = host;
    rest = sp < 0 ? "" : rest.slice(sp + 1);
    tag = TAG.exec(rest);
  }
  if (tag !== null) {
    syslog["appname"] = tag[1];
    if (tag[2] !== undefined) syslog["procid"] = tag[2];
    rest = rest.slice(tag[0].length);
  }
  fields["message"] = rest;
  return true;
}

/** A BSD message whose header is not there: the whole text is the message (with its priority, if any). */
function whole(text: string, fields: Record<string, unknown>): boolean {
  fields["message"] = text;
  return true;
}

function bsdTime(
  year: number | undefined,
  month: number,
  day: number,
  h: number,
  min: number,
  s: number,
  now: number,
  timeZone: string | undefined,
): string | undefined {
  if (h > 23 || min > 59 || s > 60) return undefined;
  // The wall time, as if it were UTC; then the instant it is in the zone.
  const wall = (y: number): number => Date.UTC(y, month, day, h, min, Math.min(s, 59));
  const at = (y: number): number => (timeZone === undefined ? wall(y) : wallToInstant(wall(y), timeZone));
  let y = year ?? new Date(now).getUTCFullYear();
  let ms = at(y);
  if (year === undefined && ms > now + DAY_MS) ms = at(--y);
  // Feb 30 and the like roll over into the next month: not a date.
  const d = new Date(wall(y));
  if (d.getUTCMonth() !== month || d.getUTCDate() !== day) return undefined;
  return new Date(ms).toISOString();
}

const FORMATTERS = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = FORMATTERS.get(timeZone);
  if (f === undefined) {
    f = new Intl.DateTimeFormat("en-US", {
      timeZone,
      hourCycle: "h23",
      year: "numeric",
      month: "numeric",
      day: "numeric",
      hour: "numeric",
      minute: "numeric",
      second: "numeric",
    });
    FORMATTERS.set(timeZone, f);
  }
  return f;
}

/** Whether `timeZone` is a zone this runtime knows (an IANA name such as "Europe/Berlin", or "UTC"). */
export function checkTimeZone(timeZone: string): boolean {
  try {
    formatter(timeZone);
    return true;
  } catch {
    return false;
  }
}

/** How far the zone's clock is ahead of UTC at the instant `ms`. */
function offsetAt(ms: number, timeZone: string): number {
  const p: Record<string, number> = {};
  for (const part of formatter(timeZone).formatToParts(new Date(ms))) if (part.type !== "literal") p[part.type] = Number(part.value);
  return Date.UTC(p["year"]!, p["month"]! - 1, p["day"]!, p["hour"]!, p["minute"]!, p["second"]!) - (ms - (((ms % 1000) + 1000) % 1000));
}

/**
 * The instant at which the zone's clock shows `wall` (a wall time written as UTC ms). Twice, so that a time near a
 * daylight-saving change takes the offset in force then; a wall time the change skipped lands after it.
 */
function wallToInstant(wall: number, timeZone: string): number {
  const first = wall - offsetAt(wall, timeZone);
  return wall - offsetAt(first, timeZone);
}
