// Deterministic, realistic ~200-byte JSON log lines (pino-shaped), shared by the data file, the emitters and the
// latency writer, so every shipper sees the same bytes.

const MESSAGES = [
  "request completed",
  "request completed",
  "request completed",
  "cache miss, fetching from origin",
  "user session refreshed",
  "slow query detected",
  "payment authorized",
  "upstream responded with retryable error",
];
const METHODS = ["GET", "GET", "GET", "POST", "PUT", "DELETE"];
const PATHS = ["/api/v1/orders", "/api/v1/users", "/api/v2/search", "/health", "/api/v1/cart/items", "/static/app.js"];
const HOSTS = ["web-01", "web-02", "web-03", "api-07"];
const BASE_TIME = Date.UTC(2026, 0, 15, 8, 0, 0);

/** mulberry32: tiny seeded PRNG, so the file is byte-identical across runs and machines. */
export function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Line number `i` for generator `rand`. `wts` (epoch ms, fractional) is embedded for latency runs: the receiver
 * subtracts it from its own clock on arrival.
 */
export function makeLine(i, rand, wts) {
  const r = rand();
  const level = r < 0.85 ? 30 : r < 0.95 ? 40 : r < 0.99 ? 50 : 20;
  const status = level === 50 ? 503 : level === 40 ? 429 : 200;
  const msg = MESSAGES[Math.floor(rand() * MESSAGES.length)];
  const method = METHODS[Math.floor(rand() * METHODS.length)];
  const path = PATHS[Math.floor(rand() * PATHS.length)];
  const host = HOSTS[i & 3];
  const id = Math.floor(rand() * 1e6);
  const rt = Math.round(rand() * 25000) / 100;
  const w = wts === undefined ? "" : `,"wts":${wts.toFixed(3)}`;
  return (
    `{"level":${level},"time":${BASE_TIME + i * 3},"pid":${4000 + (i & 7)},"hostname":"${host}","reqId":"${i.toString(36)}",` +
    `"msg":"${msg}","req":{"method":"${method}","url":"${path}/${id}?page=${id % 7}"},"res":{"statusCode":${status}},` +
    `"responseTime":${rt}${w}}`
  );
}

/** Epoch milliseconds with sub-millisecond resolution, comparable across processes on one machine. */
export function epochNow() {
  return performance.timeOrigin + performance.now();
}
