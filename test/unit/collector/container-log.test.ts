// Container runtime log lines (CRI and Docker json-file): unwrapping, joining split lines per stream, the limit on a
// joined line, and the position a record may commit while a line of the other stream is unfinished.
import { afterEach, describe, expect, it, vi } from "vitest";
import { type ContainerIdle, ContainerJoiner, type ContainerFormat, containerMetadata, type ContainerLine, decodeCri, decodeDocker, rfc3339Ms } from "../../../src/collector/container-log.js";
import { LineSplitter } from "../../../src/collector/line-splitter.js";
import type { TailLine } from "../../../src/collector/tail/types.js";

afterEach(() => {
  vi.useRealTimers();
});

interface Out {
  stream: string | undefined;
  time: string | undefined;
  text: string;
  start: number;
  end: number;
  split: boolean;
}

/** Feed `input` line by line (with real offsets) through a joiner; what it emitted, and the joiner. */
function unwrap(format: ContainerFormat, input: string | Buffer, maxLineBytes = 1 << 20, idle?: ContainerIdle) {
  const out: Out[] = [];
  const openStarts: Array<number | undefined> = [];
  const joiner = new ContainerJoiner(
    format,
    maxLineBytes,
    (l: ContainerLine) => {
      out.push({ stream: l.stream, time: l.time, text: l.bytes.toString("utf8", l.bytesStart, l.bytesEnd), start: l.start, end: l.end, split: l.split });
    },
    undefined,
    idle,
  );
  const buf = typeof input === "string" ? Buffer.from(input) : input;
  const splitter = new LineSplitter({}, (text, start, end, _flags, bytes, bytesStart, bytesEnd) => {
    const line = { text, bytes, bytesStart, bytesEnd, offset: start, end, path: "p", fileKey: "k", device: "1", inode: "2" } satisfies TailLine;
    joiner.push(line);
    openStarts.push(joiner.openStart);
  });
  splitter.push(buf);
  splitter.flush();
  return { out, joiner, openStarts };
}

describe("rfc3339Ms", () => {
  it("keeps milliseconds of nanosecond times, converts offsets to UTC, and rejects what is not a time", () => {
    expect(rfc3339Ms("2024-05-01T10:00:00.123456789Z")).toBe("2024-05-01T10:00:00.123Z");
    expect(rfc3339Ms("2024-05-01T10:00:00Z")).toBe("2024-05-01T10:00:00.000Z");
    expect(rfc3339Ms("2024-05-01T10:00:00.5Z")).toBe("2024-05-01T10:00:00.500Z");
    expect(rfc3339Ms("2024-05-01T12:00:00.250000000+02:00")).toBe("2024-05-01T10:00:00.250Z");
    expect(rfc3339Ms("2024-05-01T10:00:00.123456789-05:30")).toBe("2024-05-01T15:30:00.123Z");
    for (const bad of ["2024-05-01 10:00:00Z", "2024-13-01T10:00:00Z", "2024-05-01T25:00:00Z", "yesterday", "", "2024-05-01T10:00:00"]) {
      expect(rfc3339Ms(bad), bad).toBeUndefined();
    }
  });
});

describe("decodeCri", () => {
  const piece = (line: string) => {
    const bytes = Buffer.from(`xx${line}yy`);
    const p = decodeCri(bytes, 2, bytes.length - 2);
    return p && { stream: p.stream, time: p.time, partial: p.partial, text: p.bytes.toString("utf8", p.s, p.e) };
  };

  it("reads time, stream, the partial tag and the content, within the line's bounds", () => {
    expect(piece("2024-05-01T10:00:00.123456789Z stdout F hello world")).toEqual({
      stream: "stdout",
      time: "2024-05-01T10:00:00.123Z",
      partial: false,
      text: "hello world",
    });
    expect(piece("2024-05-01T10:00:00Z stderr P  two spaces kept")).toMatchObject({ stream: "stderr", partial: true, text: " two spaces kept" });
    // Further tags after `:` (CRI allows them), an empty content with and without its space.
    expect(piece("2024-05-01T10:00:00Z stdout F:x:y text")).toMatchObject({ partial: false, text: "text" });
    expect(piece("2024-05-01T10:00:00Z stdout F ")).toMatchObject({ text: "" });
    expect(piece("2024-05-01T10:00:00Z stdout F")).toMatchObject({ text: "" });
  });

  it("is undefined for lines that are not CRI", () => {
    for (const line of [
      "plain text line",
      "2024-05-01T10:00:00Z stdin F text",
      "2024-05-01T10:00:00Z stdout X text",
      "2024-05-01T10:00:00Z stdout FF text",
      "2024-05-01T10:00:00Z stdout",
      "2024-05-01T10:00:00Z stdoutF text",
      "not-a-time stdout F text",
      `${"9".repeat(100)} stdout F text`,
      "",
    ]) {
      expect(piece(line), line).toBeUndefined();
    }
  });
});

describe("decodeDocker", () => {
  it("reads log, stream and time; a log without its newline is a partial piece", () => {
    const full = decodeDocker('{"log":"hello \\"x\\"\\n","stream":"stderr","time":"2024-05-01T10:00:00.987654321Z"}')!;
    expect({ stream: full.stream, time: full.time, partial: full.partial, text: full.bytes.toString("utf8", full.s, full.e) }).toEqual({
      stream: "stderr",
      time: "2024-05-01T10:00:00.987Z",
      partial: false,
      text: 'hello "x"',
    });
    expect(decodeDocker('{"log":"part","stream":"stdout","time":"2024-05-01T10:00:00Z"}')).toMatchObject({ partial: true });
  });

  it("is undefined for JSON that is not a json-file line", () => {
    for (const line of [
      '{"msg":"pino line"}',
      '{"log":"x\\n","stream":"stdin","time":"2024-05-01T10:00:00Z"}',
      '{"log":"x\\n","stream":"stdout"}',
      '{"log":1,"stream":"stdout","time":"2024-05-01T10:00:00Z"}',
      '{"log":"x\\n","stream":"stdout","time":"later"}',
      "[1,2]",
      "null",
      "{not json",
    ]) {
      expect(decodeDocker(line), line).toBeUndefined();
    }
  });
});

describe("ContainerJoiner", () => {
  it("CRI: joins a line's pieces per stream, in the order lines end, with the first piece's time and offset", () => {
    const lines = [
      "2024-05-01T10:00:00.100Z stdout P one-",
      "2024-05-01T10:00:00.200Z stderr F err alone",
      "2024-05-01T10:00:00.300Z stdout P two-",
      "2024-05-01T10:00:00.400Z stdout F three",
      "2024-05-01T10:00:00.500Z stdout F next",
    ];
    const input = lines.map((l) => `${l}\n`).join("");
    const starts = lines.map((_, i) => Buffer.byteLength(lines.slice(0, i).map((l) => `${l}\n`).join("")));
    const { out, joiner, openStarts } = unwrap("cri", input);
    expect(out).toEqual([
      { stream: "stderr", time: "2024-05-01T10:00:00.200Z", text: "err alone", start: starts[1], end: starts[2], split: false },
      { stream: "stdout", time: "2024-05-01T10:00:00.100Z", text: "one-two-three", start: 0, end: starts[4], split: false },
      { stream: "stdout", time: "2024-05-01T10:00:00.500Z", text: "next", start: starts[4], end: input.length, split: false },
    ]);
    // While stdout's line was open, nothing may commit past its first piece.
    expect(openStarts).toEqual([0, 0, 0, undefined, undefined]);
    expect(joiner.stats).toEqual({ invalid: 0, joined: 1, unfinished: 0 });
  });

  it("Docker json-file: joins 16 KiB pieces (no trailing newline) and drops the line's own newline", () => {
    const big = "x".repeat(16_384);
    const rec = (log: string, stream = "stdout") => `${JSON.stringify({ log, stream, time: "2024-05-01T10:00:00.000000001Z" })}\n`;
    const input = rec(big) + rec("err\n", "stderr") + rec(big) + rec("end\n") + rec("\n");
    const { out, joiner } = unwrap("docker", input);
    expect(out.map((o) => [o.stream, o.text.length, o.text.slice(-3)])).toEqual([
      ["stderr", 3, "err"],
      ["stdout", 2 * 16_384 + 3, "end"],
      ["stdout", 0, ""],
    ]);
    expect(joiner.stats.joined).toBe(1);
  });

  it("auto: tells Docker's lines from CRI's per line; lines in neither are shipped whole and counted", () => {
    const input = '{"log":"from docker\\n","stream":"stdout","time":"2024-05-01T10:00:00Z"}\n2024-05-01T10:00:01Z stderr F from cri\nneither\n{"msg":"pino"}\n';
    const { out, joiner } = unwrap("auto", input);
    expect(out.map((o) => [o.stream, o.text])).toEqual([
      ["stdout", "from docker"],
      ["stderr", "from cri"],
      [undefined, "neither"],
      [undefined, '{"msg":"pino"}'],
    ]);
    expect(out[2]!.time).toBeUndefined();
    expect(joiner.stats).toEqual({ invalid: 2, joined: 0, unfinished: 0 });
  });

  it("joins bytes, not text: a UTF-8 character the runtime cut between two pieces comes out whole", () => {
    const euro = Buffer.from("€"); // 3 bytes
    const input = Buffer.concat([
      Buffer.from("2024-05-01T10:00:00Z stdout P price: 5"),
      euro.subarray(0, 1),
      Buffer.from("\n2024-05-01T10:00:00Z stdout F "),
      euro.subarray(1),
      Buffer.from(" each\n"),
    ]);
    const { out } = unwrap("cri", input);
    expect(out.map((o) => o.text)).toEqual(["price: 5€ each"]);
  });

  it("a joined line past maxLineBytes goes out in flagged pieces, its last included, cut between characters", () => {
    const p = (tag: string, text: string) => `2024-05-01T10:00:00Z stdout ${tag} ${text}\n`;
    // 64 bytes at most: 3 pieces of 30 bytes ("é" is 2 bytes) make 90.
    const part = "é".repeat(15);
    const input = p("P", part) + p("P", part) + p("F", part) + p("F", "after");
    const { out, openStarts } = unwrap("cri", input, 64);
    expect(out.map((o) => [Buffer.byteLength(o.text), o.split])).toEqual([
      [64, true],
      [26, true],
      [5, false],
    ]);
    expect(out.slice(0, 2).map((o) => o.text).join("")).toBe(part.repeat(3));
    // Every piece keeps the line's first offset; the open rest holds commits there until the line ends.
    expect(out[0]!.start).toBe(0);
    expect(out[1]!.start).toBe(0);
    expect(openStarts).toEqual([0, 0, undefined, undefined]);
  });

  it("flush() ships unfinished lines as flagged pieces at their last piece's end; abandon() forgets them", () => {
    const input = "2024-05-01T10:00:00Z stdout P head\n2024-05-01T10:00:01Z stderr P other\n";
    const a = unwrap("cri", input);
    expect(a.out).toEqual([]);
    a.joiner.flush();
    expect(a.out.map((o) => [o.stream, o.text, o.split, o.end])).toEqual([
      ["stdout", "head", true, 35],
      ["stderr", "other", true, input.length],
    ]);
    expect(a.joiner.openStart).toBeUndefined();

    const b = unwrap("cri", input);
    b.joiner.abandon();
    b.joiner.flush();
    expect(b.out).toEqual([]);
    expect(b.joiner.openStart).toBeUndefined();
  });
});

describe("ContainerJoiner idle timeout", () => {
  const open = "2024-05-01T10:00:00Z stdout P no newline at exit\n";

  it("ships a line left unfinished for timeoutMs as a flagged piece, and counts it", () => {
    vi.useFakeTimers();
    const { out, joiner } = unwrap("cri", open, undefined, { timeoutMs: 100, reading: () => false });
    vi.advanceTimersByTime(99);
    expect(out).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(out.map((o) => [o.text, o.split, o.end])).toEqual([["no newline at exit", true, open.length]]);
    expect(joiner.stats.unfinished).toBe(1);
    expect(joiner.openStart).toBeUndefined();
  });

  it("waits while the file is still being read, while held back for credit, and never once closed or with false", () => {
    vi.useFakeTimers();
    let reading = true;
    const a = unwrap("cri", open, undefined, { timeoutMs: 100, reading: () => reading });
    vi.advanceTimersByTime(500);
    expect(a.out).toEqual([]);
    reading = false;
    vi.advanceTimersByTime(100);
    expect(a.out).toHaveLength(1);

    const b = unwrap("cri", open, undefined, { timeoutMs: 100, reading: () => false });
    b.joiner.pauseIdle();
    vi.advanceTimersByTime(1000);
    expect(b.out).toEqual([]);
    b.joiner.resumeIdle();
    vi.advanceTimersByTime(99);
    expect(b.out).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(b.out).toHaveLength(1);

    const c = unwrap("cri", open, undefined, { timeoutMs: 100, reading: () => false });
    c.joiner.close();
    const d = unwrap("cri", open, undefined, { timeoutMs: false, reading: () => false });
    vi.advanceTimersByTime(10_000);
    expect(c.out).toEqual([]);
    expect(d.out).toEqual([]);
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe("containerMetadata", () => {
  const id = "3b1f0a9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a";
  it("reads pod, namespace, container and id from kubelet's and Docker's paths", () => {
    expect(containerMetadata(`/var/log/containers/web-7d9f8b6c4-x2k9p_shop_nginx-${id}.log`)).toEqual({
      kubernetes: { pod: { name: "web-7d9f8b6c4-x2k9p" }, namespace: "shop", container: { name: "nginx" } },
      container: { id },
    });
    expect(containerMetadata("/var/log/pods/shop_web-7d9f8b6c4-x2k9p_0b6f7c1e-2d3a-4b5c-8d9e-0f1a2b3c4d5e/nginx/0.log")).toEqual({
      kubernetes: { namespace: "shop", pod: { name: "web-7d9f8b6c4-x2k9p", uid: "0b6f7c1e-2d3a-4b5c-8d9e-0f1a2b3c4d5e" }, container: { name: "nginx" } },
    });
    expect(containerMetadata("/var/log/pods/shop_web-1_0b6f7c1e-2d3a-4b5c-8d9e-0f1a2b3c4d5e/nginx/3.log.20240501-100000")).toMatchObject({
      kubernetes: { container: { name: "nginx" } },
    });
    expect(containerMetadata(`/var/lib/docker/containers/${id}/${id}-json.log`)).toEqual({ container: { id } });
    expect(containerMetadata(`/var/lib/docker/containers/${id}/${id}-json.log.1`)).toEqual({ container: { id } });
  });

  it("is undefined for other paths", () => {
    for (const p of ["/var/log/app.log", `/var/log/containers/Web_shop_nginx-${id}.log`, `/var/log/containers/web_shop_nginx-${id.slice(1)}.log`, `/x/${id}/other-json.log`]) {
      expect(containerMetadata(p), p).toBeUndefined();
    }
  });
});
