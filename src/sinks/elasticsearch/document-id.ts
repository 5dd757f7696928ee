// Deterministic `_id`s: a replayed record gets the id it had the first time, so `create` answers 409 instead of storing a duplicate.
import { createHash } from "node:crypto";
import type { LogRecord } from "../../record.js";

/** Elasticsearch rejects `_id`s longer than 512 bytes. */
export const MAX_ID_BYTES = 512;

/**
 * The stable id of one record.
 *
 * - A record that knows where it was read (`log.offset`, from a file source) is identified by source name +
 *   `host.name` + file identity (`log.file.path`, `device_id`, `inode`, `fingerprint`) + offset + `message`.
 *   Re-reading the same line after a crash gives the same id even when other enrichment or arrival-time fields
 *   differ. FileSource records carry `device_id` and `inode`, so the file that replaces a rotated one at the same
 *   path (offsets restarting at 0) gets other ids; `host.name` keeps two hosts that ship the same path apart. The
 *   message is part of the key for records whose file identity is only a path (no inode or fingerprint).
 *   Limit: the same message at the same offset of the same inode gets the same id, so content rewritten in place
 *   (a copytruncate, or an inode reused at the same path) that repeats the old line there answers 409, unstored.
 * - Any other record is identified by source name + its canonical JSON. Trade-off: two identical lines with
 *   identical `@timestamp` from the same source collapse into one document; and a record whose `@timestamp`
 *   was filled in with the arrival time gets a new id on replay (no dedup for those).
 *
 * sha256, first 120 bits, base64url: 20 characters, the length of Elasticsearch's own auto ids.
 */
export function deterministicId(source: string | undefined, json: string, getRecord: () => LogRecord): string {
  const h = createHash("sha256");
  // Only parse when the text mentions an offset at all; most non-file records then hash their JSON directly.
  const record = json.includes('"offset"') ? getRecord() : undefined;
  const offset = record?.log?.offset;
  if (record !== undefined && typeof offset === "number" && Number.isFinite(offset)) {
    const file = record.log?.file;
    h.update("o\0");
    h.update(source ?? "");
    h.update("\0");
    h.update(str(record.host?.name));
    h.update("\0");
    h.update(str(file?.path));
    h.update("\0");
    h.update(str(file?.device_id));
    h.update("\0");
    h.update(str(file?.inode));
    h.update("\0");
    h.update(str(file?.fingerprint));
    h.update("\0");
    h.update(String(offset));
    h.update("\0");
    h.update(str(record.message));
  } else {
    h.update("j\0");
    h.update(source ?? "");
    h.update("\0");
    h.update(json);
  }
  return h.digest().subarray(0, 15).toString("base64url");
}

function str(value: unknown): string {
  return typeof value === "string" ? value : typeof value === "number" ? String(value) : "";
}
