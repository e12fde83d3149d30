// Shared by the probes that run a library in a web page (headless Chromium, driven by puppeteer-core): the
// library bundled for the browser with esbuild, a loopback server of the probe's own for the page and its
// files, and the browser itself. Imported by the probe scripts next to it; runs nothing by itself.
import { createHash } from "node:crypto";
import { readFileSync, readdirSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { join, normalize } from "node:path";

import { NPM, load } from "./zarrita_common.mjs";

const CHROMIUM = process.env.ZIPSTORE_CHROMIUM || "/usr/bin/chromium";
const TYPES = { ".js": "text/javascript", ".wasm": "application/wasm", ".json": "application/json" };

/** `source` (an ES module's text) for the browser: one ES module `entry.js` and its lazily loaded chunks,
 *  plus each of `workers` ({out: name, in: file}) at the name the library's `new URL(name, import.meta.url)`
 *  asks for, in `folder/out`. Returns the set of names written there. */
export async function bundle(folder, source, workers = []) {
  const { build } = await load("esbuild");
  writeFileSync(join(folder, "entry.mjs"), source);
  await build({
    entryPoints: [{ in: join(folder, "entry.mjs"), out: "entry" }, ...workers],
    bundle: true,
    format: "esm",
    splitting: true,
    platform: "browser",
    external: ["worker_threads"], // Node-only worker paths (unzipit's): never taken in a page
    outdir: join(folder, "out"),
    nodePaths: [NPM],
    logLevel: "silent",
  });
  return new Set(readdirSync(join(folder, "out"), { recursive: true }));
}

/** The page's origin on loopback: a blank page at `/`, the bundle's files, and under each prefix of `mounts`
 *  ({"pipelines/": folder}) the files of that folder. `isolated` serves everything with the headers that make
 *  the page cross-origin isolated (COOP same-origin, COEP require-corp), which SharedArrayBuffer needs. The
 *  port is the same every night for the same `seed` (the browser names the page's origin in its words). */
export async function pageServer(folder, files, seed, { isolated = false, mounts = {} } = {}) {
  const headers = isolated ? { "cross-origin-opener-policy": "same-origin", "cross-origin-embedder-policy": "require-corp" } : {};
  const send = (res, name, path) => {
    let body;
    try {
      body = readFileSync(path);
    } catch {
      res.writeHead(404, headers);
      return res.end();
    }
    const type = TYPES[name.slice(name.lastIndexOf("."))] ?? "application/octet-stream";
    res.writeHead(200, { ...headers, "content-type": type });
    return res.end(body);
  };
  const server = createServer((req, res) => {
    const name = normalize(new URL(req.url, "http://page").pathname.slice(1));
    if (name === "." || name === "") {
      res.writeHead(200, { ...headers, "content-type": "text/html" });
      return res.end("<!doctype html><meta charset=utf-8><title>zipstore</title>");
    }
    if (files.has(name)) return send(res, name, join(folder, "out", name));
    const prefix = Object.keys(mounts).find((p) => name.startsWith(p) && !name.includes(".."));
    if (prefix) return send(res, name, join(mounts[prefix], name.slice(prefix.length)));
    res.writeHead(404, headers);
    return res.end();
  });
  let port = 20000 + (parseInt(createHash("sha256").update(String(seed)).digest("hex").slice(0, 8), 16) % 20000);
  for (;;) {
    try {
      await new Promise((ok, fail) => server.once("error", fail).listen(port, "127.0.0.1", ok));
      return server;
    } catch (err) {
      if (err?.code !== "EADDRINUSE") throw err;
      port += 1;
    }
  }
}

/** Debian's Chromium, headless, with a profile in `folder`. */
export async function launch(folder) {
  const puppeteer = (await load("puppeteer-core")).default;
  return puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    userDataDir: join(folder, "profile"),
    // the container is the sandbox (no capabilities, read-only root, its own network); Chromium's own needs
    // user namespaces it does not have there
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--no-zygote"],
  });
}
