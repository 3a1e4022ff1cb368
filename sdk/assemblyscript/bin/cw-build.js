#!/usr/bin/env node
// Builds an AssemblyScript strategy plugin:
//
//   node sdk/assemblyscript/bin/cw-build.js ENTRY.ts [-o OUT.wasm] [--manifest FILE.json]
//
// 1. compiles ENTRY.ts with the pinned asc (../node_modules): optimised,
//    runtime `stub` (no GC work on the hot path), `abort` disabled so the
//    module imports only from `cw` (a failed assertion is then a trap);
// 2. checks the manifest (default: ENTRY with `.manifest.json` for `.ts`)
//    is JSON with "abi": 1, and appends it as the `cw_manifest` custom
//    section, which AssemblyScript cannot emit from source.
import { readFileSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import asc from "assemblyscript/asc";

function fail(msg) {
  console.error(`cw-build: ${msg}`);
  process.exit(1);
}

const args = process.argv.slice(2);
let entry = null, out = null, manifestPath = null;
for (let i = 0; i < args.length; i++) {
  if (args[i] === "-o") out = args[++i];
  else if (args[i] === "--manifest") manifestPath = args[++i];
  else if (entry === null) entry = args[i];
  else fail(`unexpected argument ${args[i]}`);
}
if (!entry) fail("usage: cw-build.js ENTRY.ts [-o OUT.wasm] [--manifest FILE.json]");
const stem = basename(entry).replace(/\.ts$/, "");
out ??= join(dirname(entry), `${stem}.wasm`);
manifestPath ??= join(dirname(entry), `${stem}.manifest.json`);

let manifest;
try {
  manifest = readFileSync(manifestPath, "utf8");
} catch (e) {
  fail(`${manifestPath}: ${e.message} (the manifest, sdk/ABI.md §2)`);
}
let parsed;
try {
  parsed = JSON.parse(manifest);
} catch (e) {
  fail(`${manifestPath}: not valid JSON: ${e.message}`);
}
if (parsed.abi !== 1) fail(`${manifestPath}: "abi" must be 1`);

const { error, stderr } = await asc.main([
  entry, "-o", out, "-O3", "--runtime", "stub", "--use", "abort=",
]);
if (error) fail(`asc failed:\n${stderr.toString()}`);

// A custom section may sit anywhere after the header; append it.
function leb(n) {
  const bytes = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    bytes.push(b);
  } while (n !== 0);
  return bytes;
}
const name = Buffer.from("cw_manifest", "utf8");
const payload = Buffer.from(JSON.stringify(parsed), "utf8");
const body = Buffer.concat([Buffer.from(leb(name.length)), name, payload]);
const section = Buffer.concat([Buffer.from([0]), Buffer.from(leb(body.length)), body]);
writeFileSync(out, Buffer.concat([readFileSync(out), section]));
console.error(`cw-build: ${out} (${readFileSync(out).length} bytes)`);
