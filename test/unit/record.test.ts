// Table tests for the record model's normalizers: every log format we ingest passes through these two functions.
import { describe, expect, it } from "vitest";
import { epochMs, normalizeLevel, parseTimestamp, syslogSeverity, writeIsoFromMs, LOG_LEVELS } from "../../src/record.js";

describe("normalizeLevel", () => {
  it.each([
    // words, any case, with whitespace
    ["WARNING", "warn"], ["warn", "warn"], ["Warn", "warn"], [" error ", "error"], ["ERR", "error"], ["eror", "error"],
    ["Informational", "info"], ["INFO", "info"], ["notice", "info"], ["information", "info"],
    ["TRACE", "trace"], ["verbose", "trace"], ["silly", "trace"], ["debug", "debug"], ["DBG", "debug"], ["fine", "debug"],
    ["dbug", "debug"], ["http", "debug"],
    ["fatal", "fatal"], ["CRITICAL", "fatal"], ["crit", "fatal"], ["alert", "fatal"], ["emerg", "fatal"], ["panic", "fatal"],
    ["severe", "error"], ["dpanic", "error"],
    // logcat / glog letters
    ["V", "trace"], ["D", "debug"], ["I", "info"], ["W", "warn"], ["E", "error"], ["F", "fatal"],
    // syslog severities 0–7 as numbers and strings
    [0, "fatal"], [1, "fatal"], [2, "fatal"], [3, "error"], [4, "warn"], [5, "info"], [6, "info"], [7, "debug"],
    ["0", "fatal"], ["3", "error"], ["5", "info"], ["7", "debug"],
    // pino / bunyan
    [10, "trace"], [20, "debug"], [30, "info"], [40, "warn"], [50, "error"], [60, "fatal"], [35, "info"], [100, "fatal"],
    ["30", "info"], ["50", "error"],
  ] as const)("%o → %s", (input, expected) => {
    expect(normalizeLevel(input)).toBe(expected);
  });

  it.each([
    [8], [9], [-1], [5.5], [Number.NaN], [Number.POSITIVE_INFINITY], [""], ["   "], ["banana"], ["5.5"], ["-3"],
    [null], [undefined], [true], [{}], [[]], [30n],
    // Object.prototype members must not leak out as "levels"
    ["constructor"], ["toString"], ["__proto__"], ["hasOwnProperty"], ["valueOf"],
  ])("%o → undefined", (input) => {
    expect(normalizeLevel(input)).toBeUndefined();
  });

  it("always returns one of LOG_LEVELS or undefined", () => {
    for (const v of ["x", "WARN", 31, 0, "constructor"]) {
      const l = normalizeLevel(v);
      if (l !== undefined) expect(LOG_LEVELS).toContain(l);
    }
  });
});

describe("syslogSeverity", () => {
  it.each([
    ["fatal", 2], ["error", 3], ["warn", 4], ["info", 6], ["debug", 7], ["trace", 7], [undefined, 6],
  ] as const)("%s → %i", (level, n) => {
    expect(syslogSeverity(level)).toBe(n);
  });
});

describe("parseTimestamp", () => {
  it.each([
    // ISO with zone / offset / no zone (UTC)
    ["2024-01-15T10:00:00Z", "2024-01-15T10:00:00.000Z"],
    ["2024-01-15T10:00:00.123Z", "2024-01-15T10:00:00.123Z"],
    ["2024-01-15T10:00:00.123456789Z", "2024-01-15T10:00:00.123Z"],
    ["2024-01-15T10:00:00.9999Z", "2024-01-15T10:00:00.999Z"], // truncated, not rounded into the next second
    ["2024-01-15T10:00:00.1Z", "2024-01-15T10:00:00.100Z"],
    ["2024-01-15T10:00:00+02:00", "2024-01-15T08:00:00.000Z"],
    ["2024-01-15T10:00:00-0530", "2024-01-15T15:30:00.000Z"],
    ["2024-01-15T10:00:00+05", "2024-01-15T05:00:00.000Z"],
    ["2024-01-15T01:00:00+02:00", "2024-01-14T23:00:00.000Z"],
    ["2024-01-15T10:00:00", "2024-01-15T10:00:00.000Z"],
    ["2024-01-15 10:00:00", "2024-01-15T10:00:00.000Z"],
    ["2024-01-15T10:00", "2024-01-15T10:00:00.000Z"],
    ["2024-01-15 10:00:00,123", "2024-01-15T10:00:00.123Z"], // Python logging / log4j
    ["2024-01-15t10:00:00z", "2024-01-15T10:00:00.000Z"],
    ["2024-01-15 10:00:00 +0000", "2024-01-15T10:00:00.000Z"],
    ["2024-01-15 10:00:00 UTC", "2024-01-15T10:00:00.000Z"],
    ["2024-01-15", "2024-01-15T00:00:00.000Z"],
    ["2024-02-29T00:00:00Z", "2024-02-29T00:00:00.000Z"],
    ["  2024-01-15T10:00:00Z  ", "2024-01-15T10:00:00.000Z"],
    ["0001-01-01T00:00:00Z", "0001-01-01T00:00:00.000Z"], // Go's zero time, not 1901
    // Common Log Format
    ["15/Jan/2024:10:00:00 +0100", "2024-01-15T09:00:00.000Z"],
    ["15/jan/2024:10:00:00", "2024-01-15T10:00:00.000Z"],
    // epoch seconds / ms / µs / ns, numbers, strings and bigints
    [1705312800, "2024-01-15T10:00:00.000Z"],
    [1705312800.123, "2024-01-15T10:00:00.123Z"],
    ["1705312800.5", "2024-01-15T10:00:00.500Z"],
    ["1705312800.123999", "2024-01-15T10:00:00.123Z"],
    [1705312800123, "2024-01-15T10:00:00.123Z"],
    ["1705312800123", "2024-01-15T10:00:00.123Z"],
    [1705312800123456, "2024-01-15T10:00:00.123Z"],
    ["1705312800123999", "2024-01-15T10:00:00.123Z"],
    [1705312800123456789, "2024-01-15T10:00:00.123Z"],
    ["1705312800123999999", "2024-01-15T10:00:00.123Z"],
    [1705312800123456789n, "2024-01-15T10:00:00.123Z"],
    [0, "1970-01-01T00:00:00.000Z"],
    [new Date("2024-01-15T10:00:00.000Z"), "2024-01-15T10:00:00.000Z"],
  ] as const)("%o → %s", (input, expected) => {
    expect(parseTimestamp(input)).toBe(expected);
  });

  it("keeps the millisecond digit of every fractional second exactly (no float drift)", () => {
    for (let ms = 0; ms < 1000; ms++) {
      const secs = 1705312800 + ms / 1000;
      expect(parseTimestamp(secs)).toBe(new Date(1705312800000 + ms).toISOString());
    }
  });

  it.each([
    ["not a date"], [""], ["   "], ["2024-13-01T00:00:00Z"], ["2024-02-30T10:00:00Z"], ["2023-02-29T00:00:00Z"],
    ["2024-04-31"], ["2024-01-15T25:00:00Z"], ["2024-01-15T10:61:00Z"], ["2024-01-15T10:00:00+25:00"],
    ["2024-01-15T10:00:00ZZ"], ["32/Jan/2024:10:00:00 +0000"], ["15/Foo/2024:10:00:00 +0000"], ["-1"], [-1],
    [Number.NaN], [Number.POSITIVE_INFINITY], [-5n], [new Date(Number.NaN)], [null], [undefined], [true], [{}],
    ["1e10"], ["0x10"], ["12:00:00"], ["99999999999999999999999"], [1e25], ["Jan 15 10:00:00"],
  ])("%o → undefined", (input) => {
    expect(parseTimestamp(input)).toBeUndefined();
  });

  it("formats exactly like Date#toISOString across years 0000–9999 (it avoids Date on the hot path)", () => {
    const min = Date.UTC(0, 0, 1) - 1900 * 365.2425 * 86_400_000; // year 0 (Date.UTC maps 0 to 1900)
    const max = Date.UTC(9999, 11, 31, 23, 59, 59, 999);
    let seed = 42;
    const random = () => ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31);
    const samples = [0, max, Date.UTC(2000, 1, 29), Date.UTC(1900, 2, 1) - 1, Date.UTC(2100, 1, 28, 23, 59, 59, 999)];
    for (let i = 0; i < 5000; i++) samples.push(Math.floor(min + random() * (max - min)));
    for (const ms of samples) {
      const date = new Date(ms);
      if (date.getUTCFullYear() < 0) continue;
      expect(parseTimestamp(date), String(ms)).toBe(date.toISOString());
    }
    // and ISO strings with offsets agree with Date.parse
    for (let i = 0; i < 2000; i++) {
      const ms = Math.floor(Date.UTC(1970, 0, 1) + random() * 2e12);
      const offset = Math.floor(random() * 24 * 60) - 12 * 60;
      const local = new Date(ms + offset * 60_000).toISOString().slice(0, 23);
      const sign = offset < 0 ? "-" : "+";
      const abs = Math.abs(offset);
      const zone = `${sign}${String(Math.floor(abs / 60)).padStart(2, "0")}:${String(abs % 60).padStart(2, "0")}`;
      expect(parseTimestamp(local + zone)).toBe(new Date(Date.parse(local + zone)).toISOString());
    }
  });

  it("returns undefined past year 9999 instead of an extended-year string", () => {
    expect(parseTimestamp(99999999999)).toBe("5138-11-16T09:46:39.000Z");
    const year10000 = new Date(0);
    year10000.setUTCFullYear(10000, 0, 1);
    expect(parseTimestamp(year10000)).toBeUndefined();
    expect(parseTimestamp(253402300800000)).toBe("1978-01-11T21:31:40.800Z"); // ≥ 1e14 reads as µs, by design
  });
});

describe("writeIsoFromMs", () => {
  it("writes the bytes of toISOString for epoch ms across the supported range, in and out of one second", () => {
    const out = Buffer.alloc(64, 0x2e);
    const samples = [0, 1, 999, 1000, 1768464000000, 1768464000999, 1768464001000, 951782400000, 253402300799999, -62167219200000, -1, -86_400_001];
    let x = 0x12345;
    for (let i = 0; i < 2000; i++) {
      x = (x * 1103515245 + 12345) % 2147483648;
      samples.push(Math.floor((x / 2147483648) * (253402300799999 + 62167219200000)) - 62167219200000);
    }
    for (const ms of samples) {
      const end = writeIsoFromMs(ms, out, 3);
      expect(out.toString("latin1", 3, end), String(ms)).toBe(new Date(ms).toISOString());
      expect(out[2]).toBe(0x2e); // nothing before the start
    }
  });

  it("takes what epochMs gives for parseTimestamp's numbers: same text either way", () => {
    for (const n of [1768464000, 1768464000.25, 1768464000123, 1768464000123456, 1768464000123456789, 0, 1.5]) {
      const ms = epochMs(n)!;
      const out = Buffer.alloc(24);
      writeIsoFromMs(ms, out, 0);
      expect(out.toString("latin1"), String(n)).toBe(parseTimestamp(n));
    }
    expect(epochMs(-1)).toBeUndefined();
    expect(epochMs(Number.NaN)).toBeUndefined();
    expect(epochMs(1e21)).toBeUndefined();
  });
});
