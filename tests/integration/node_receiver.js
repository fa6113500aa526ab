// A webhook receiver that verifies requests the way receivers written for the original Docora do:
// re-serialise the parsed body with JSON.stringify, HMAC `${timestamp}.${reserialised}`, compare in
// constant time, refuse timestamps more than 300 s away. It reassembles chunked files and checks their
// SHA-256. GET /received reports what it accepted and what it refused. Prints {"port": N} once listening.
"use strict";

const crypto = require("crypto");
const http = require("http");

const KEY = process.env.DOCORA_CLIENT_AUTH_KEY;
if (!KEY) {
  process.stderr.write("DOCORA_CLIENT_AUTH_KEY is not set\n");
  process.exit(2);
}
const MAX_SKEW_SECONDS = 300;

const events = [];
const failures = [];
const files = [];
const transfers = new Map(); // chunk id -> {total, slices: Map(index -> content), file}

function verify(req, raw) {
  const timestamp = req.headers["x-docora-timestamp"];
  const given = req.headers["x-docora-signature"] || "";
  if (!timestamp || Math.abs(Date.now() / 1000 - Number(timestamp)) > MAX_SKEW_SECONDS) {
    return { ok: false, reason: "timestamp outside the allowed window" };
  }
  const parsed = JSON.parse(raw);
  const reserialised = JSON.stringify(parsed);
  const expected =
    "sha256=" + crypto.createHmac("sha256", KEY).update(`${timestamp}.${reserialised}`).digest("hex");
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  if (a.length !== b.length || !crypto.timingSafeEqual(a, b)) {
    return { ok: false, reason: "signature mismatch", byteIdentical: reserialised === raw };
  }
  return { ok: true, parsed, byteIdentical: reserialised === raw };
}

function collectChunk(event, file) {
  const { id, index, total } = file.chunk;
  let transfer = transfers.get(id);
  if (!transfer) {
    transfer = { total, slices: new Map() };
    transfers.set(id, transfer);
  }
  transfer.slices.set(index, file.content);
  if (transfer.slices.size < total) return;
  const ordered = [];
  for (let i = 0; i < total; i++) ordered.push(transfer.slices.get(i));
  const bytes = Buffer.from(ordered.join(""), "base64");
  const sha = crypto.createHash("sha256").update(bytes).digest("hex");
  files.push({ event, id, path: file.path, size: bytes.length, sha, ok: sha === file.sha && bytes.length === file.size });
  transfers.delete(id);
}

function contentSha(file) {
  const bytes = Buffer.from(file.content, file.content_encoding === "base64" ? "base64" : "utf8");
  return crypto.createHash("sha256").update(bytes).digest("hex");
}

function record(req, parsed, byteIdentical) {
  const event = req.url.replace(/^\//, "");
  const file = parsed.file || {};
  events.push({
    event,
    header_event: req.headers["x-docora-event"],
    delivery: req.headers["x-docora-delivery"],
    user_agent: req.headers["user-agent"],
    byte_identical: byteIdentical,
    path: file.path,
    sha: file.sha,
    chunk: file.chunk || null,
    content: file.chunk ? null : file.content,
    sha_ok: file.chunk || file.content === undefined ? null : contentSha(file) === file.sha,
    body: file.chunk ? null : parsed,
  });
  if (file.chunk) collectChunk(event, file);
}

const server = http.createServer((req, res) => {
  if (req.method === "GET" && req.url === "/received") {
    res.writeHead(200, { "Content-Type": "application/json" });
    res.end(JSON.stringify({ events, failures, files }));
    return;
  }
  const parts = [];
  req.on("data", (part) => parts.push(part));
  req.on("end", () => {
    const raw = Buffer.concat(parts).toString("utf8");
    let outcome;
    try {
      outcome = verify(req, raw);
    } catch (error) {
      outcome = { ok: false, reason: `unparsable body: ${error.message}` };
    }
    if (!outcome.ok) {
      failures.push({ path: req.url, delivery: req.headers["x-docora-delivery"], ...outcome });
      res.writeHead(401, { "Content-Type": "application/json" });
      res.end(JSON.stringify({ error: outcome.reason }));
      return;
    }
    record(req, outcome.parsed, outcome.byteIdentical);
    res.writeHead(200, { "Content-Type": "application/json" });
    res.end('{"ok":true}');
  });
});

server.listen(0, "127.0.0.1", () => {
  process.stdout.write(JSON.stringify({ port: server.address().port }) + "\n");
});
process.on("SIGTERM", () => process.exit(0));
