// Shared by the probes that run a library in a web page (headless Chromium, driven by puppeteer-core): the
// library bundled for the browser with esbuild, a loopback server of the probe's own for the page and its
// files, and the browser itself. Imported by the probe scripts next to it; runs nothing by itself.
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { createServer, request } from "node:http";
import { tmpdir } from "node:os";
import { dirname, join, normalize } from "node:path";

import { NPM, load } from "./zarrita_common.mjs";

const CHROMIUM = process.env.ZIPSTORE_CHROMIUM || "/usr/bin/chromium";
const TYPES = { ".js": "text/javascript", ".wasm": "application/wasm", ".json": "application/json" };

/** `source` (an ES module's text) for the browser: one ES module `entry.js` and its lazily loaded chunks,
 *  plus each of `workers` ({out: name, in: file}) at the name the library's `new URL(name, import.meta.url)`
 *  asks for. Built in `folder/out`, or with `shared` (the harness's shared browser: tasks warm per container)
 *  once per container under /tmp, by whichever task comes first (a build is renamed into place whole, so a
 *  task sees a complete one or builds its own). Returns {out: the folder, files: the set of names there}. */
export async function bundle(folder, source, workers = [], shared = false) {
  const key = createHash("sha256").update(JSON.stringify([source, workers])).digest("hex").slice(0, 16);
  const cached = join(tmpdir(), "zipstore-bundles", key);
  if (shared && existsSync(join(cached, "out"))) {
    return { out: join(cached, "out"), files: new Set(readdirSync(join(cached, "out"), { recursive: true })) };
  }
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
  let out = join(folder, "out");
  if (shared) {
    mkdirSync(dirname(cached), { recursive: true });
    const staged = mkdtempSync(join(dirname(cached), "build-"));
    renameSync(out, join(staged, "out"));
    try {
      renameSync(staged, cached);
    } catch {
      rmSync(staged, { recursive: true, force: true }); // another task's build got there first: the same bytes
    }
    out = join(cached, "out");
  }
  return { out, files: new Set(readdirSync(out, { recursive: true })) };
}

/** The page's origin on loopback: a blank page at `/`, the bundle's files (in `out`), and under each prefix of `mounts`
 *  ({"pipelines/": folder}) the files of that folder. `isolated` serves everything with the headers that make
 *  the page cross-origin isolated (COOP same-origin, COEP require-corp), which SharedArrayBuffer needs. The
 *  port is the same every night for the same `seed` (the browser names the page's origin in its words). */
export async function pageServer(out, files, seed, { isolated = false, mounts = {} } = {}) {
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
    if (files.has(name)) return send(res, name, join(out, name));
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
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"],
  });
}

/** What the browser said on its console as an error, in a task's page (a CORS refusal): its words. */
export function listen(page, said) {
  page.on("console", (m) => {
    if (m.type() === "error" && !/favicon/.test(m.location()?.url ?? "")) said.push(m.text());
  });
}

/** A POST of `body` (JSON) to the shared browser's loopback service; its JSON answer. A failure to reach it
 *  at all (the browser ended, and the service with it) is marked `lost`. */
function call(endpoint, path, body) {
  return new Promise((resolve, reject) => {
    const data = Buffer.from(JSON.stringify(body));
    const req = request(endpoint + path, { method: "POST", headers: { "content-type": "application/json", "content-length": data.length } }, (res) => {
      const parts = [];
      res.on("data", (part) => parts.push(part));
      res.on("end", () => {
        try {
          resolve(JSON.parse(Buffer.concat(parts).toString("utf-8")));
        } catch (err) {
          reject(Object.assign(new Error(`the shared browser's service answered ${res.statusCode} with no JSON`), { lost: true }));
        }
      });
      res.on("error", (err) => reject(Object.assign(err, { lost: true })));
    });
    req.on("error", (err) => reject(Object.assign(err, { lost: true })));
    req.end(data);
  });
}

/** The browser a task works in. With `args.browser` (the harness's shared Chromium, see browser_server.mjs)
 *  each page is opened for the task by that service, in a fresh browser context of its own (its own cache,
 *  cookies and storage) whose id the service writes to `args.browser.context_file` before it answers, so the
 *  harness can close it whatever becomes of this process; this process then needs no browser driver at all.
 *  Without, a Chromium of the task's own, with a profile in `folder`. Either way: version(); page(origin):
 *  a page at `origin`/ with evaluate(fn, ...args) (JSON in, JSON out) and `said` (the console's errors);
 *  close(); lost(err): the error in words that say when it was the shared browser that ended under the task. */
export async function open(args, folder) {
  const endpoint = args.browser?.endpoint;
  if (!endpoint) {
    const browser = await launch(folder);
    return {
      version: () => browser.version(),
      page: async (origin) => {
        const page = await browser.newPage();
        const said = [];
        listen(page, said);
        await page.goto(origin + "/");
        return { said, evaluate: (fn, ...rest) => page.evaluate(fn, ...rest) };
      },
      close: () => browser.close(),
      lost: (err) => err,
    };
  }
  const pages = [];
  const answer = async (path, body) => {
    const got = await call(endpoint, path, body);
    if (got.failed) throw new Error(got.failed);
    return got;
  };
  return {
    version: async () => (await answer("/version", {})).version,
    page: async (origin) => {
      const { page } = await answer("/page", { origin: origin + "/", context_file: args.browser.context_file });
      pages.push(page);
      const said = [];
      return {
        said,
        evaluate: async (fn, ...rest) => {
          const got = await call(endpoint, "/evaluate", { page, source: String(fn), args: rest });
          said.splice(0, said.length, ...(got.said ?? []));
          if ("error" in got) throw new Error(got.error);
          if (got.failed) throw new Error(got.failed);
          return got.value;
        },
      };
    },
    close: async () => {
      for (const page of pages) await call(endpoint, "/close", { page }).catch(() => {});
    },
    lost: (err) => (err?.lost ? new Error(`the container's shared Chromium ended during this task: ${String(err?.message ?? err)}`) : err),
  };
}
