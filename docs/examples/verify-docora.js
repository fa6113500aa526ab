// Checks that a request came from Docora: HMAC-SHA256 of the raw body, at most 300 s old, compared in constant time.
"use strict";

const crypto = require("node:crypto");

const MAX_AGE_SECONDS = 300;

// rawBody: the body exactly as received (a Buffer, before any JSON parsing); headers: Node's req.headers.
// While a key rotation overlap is active, x-docora-signature-previous carries a second signature: either may match.
function verifyDocora(rawBody, headers, key, nowSeconds = Date.now() / 1000) {
  const timestamp = String(headers["x-docora-timestamp"] ?? "");
  if (!/^[0-9]{1,12}$/.test(timestamp) || Math.abs(nowSeconds - Number(timestamp)) > MAX_AGE_SECONDS) {
    return false;
  }
  const mac = crypto.createHmac("sha256", key).update(`${timestamp}.`).update(rawBody);
  const expected = Buffer.from("sha256=" + mac.digest("hex"));
  return ["x-docora-signature", "x-docora-signature-previous"].some((name) => {
    const given = Buffer.from(String(headers[name] ?? ""));
    return given.length === expected.length && crypto.timingSafeEqual(given, expected);
  });
}

module.exports = { verifyDocora };
