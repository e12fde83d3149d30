// One Chromium for a container's browser probes, started by harness.py when the first task that drives a page
// begins (and fork servers are on). A task then needs neither its own browser (~1.5 s to start here) nor the
// driver (puppeteer-core, ~0.6 s to import): it asks this service, on loopback, for a page in a fresh browser
// context, and has its functions evaluated there. Protocol with the harness, one JSON object per line:
//
//     node browser_server.mjs     out: {"ready": true, "endpoint": "http://127.0.0.1:PORT"} or {"ready": false, "why"}
//                                 in:  {"dispose": CONTEXT_ID}   (a context a task left open: killed at its
//                                      timeout, its pages may still be running)
//
// With the tasks, JSON POSTs to the endpoint (browser_common.mjs's open() is the client):
//
//     /version                                  -> {version}
//     /page     {origin, context_file}           -> {page}     a fresh context, its id written to context_file
//                                                              first; one page there, at origin
//     /evaluate {page, source, args}             -> {value, said} or {error, said}: the page's own exception
//                                                   and what the browser said on its console (errors)
//     /close    {page}                           -> {}         the page's context closed
//
// Anything else (an unknown page, bad JSON) answers {failed: words}. Stdin closing closes the browser. If the
// browser ends by itself, so does this process: the harness gives later tasks no endpoint (each starts its own).
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";

import { launch, listen } from "./browser_common.mjs";

// a request body from a task: the ngff writer's page gets the fixture's values as base64
const MAX_BODY = 256 << 20;
const say = (message) => process.stdout.write(JSON.stringify(message) + "\n");
const folder = mkdtempSync(join(tmpdir(), "browser-"));
let browser;
try {
  browser = await launch(folder);
} catch (err) {
  say({ ready: false, why: `Chromium did not start: ${String(err?.message ?? err).split("\n")[0].slice(0, 500)}` });
  rmSync(folder, { recursive: true, force: true });
  process.exit(0);
}
let closing = false;
browser.on("disconnected", () => {
  if (closing) return;
  process.stderr.write("the browser ended by itself\n");
  process.exit(1);
});

const pages = new Map(); // page id -> {page, context, said}
const contexts = new Map(); // context id -> page id
let made = 0;

async function dispose(contextId) {
  const id = contexts.get(contextId);
  if (id === undefined) return;
  const { context } = pages.get(id);
  contexts.delete(contextId);
  pages.delete(id);
  await context.close().catch(() => {});
}

const routes = {
  "/version": async () => ({ version: await browser.version() }),
  "/page": async ({ origin, context_file: contextFile }) => {
    const context = await browser.createBrowserContext();
    writeFileSync(contextFile, context.id); // before anything else can fail or hang: the harness closes it
    const id = String(++made);
    const said = [];
    pages.set(id, { context, said });
    contexts.set(context.id, id);
    const page = await context.newPage();
    pages.get(id).page = page;
    listen(page, said);
    await page.goto(origin);
    return { page: id };
  },
  "/evaluate": async ({ page: id, source, args }) => {
    const entry = pages.get(id);
    if (!entry?.page) return { failed: `no page ${id}` };
    try {
      const value = await entry.page.evaluate(`(${source})(...${JSON.stringify(args)})`);
      return { value, said: entry.said };
    } catch (err) {
      return { error: String(err?.message ?? err), said: entry.said };
    }
  },
  "/close": async ({ page: id }) => {
    const entry = pages.get(id);
    if (entry) await dispose(entry.context.id);
    return {};
  },
};

const server = createServer((req, res) => {
  const parts = [];
  let size = 0;
  req.on("data", (part) => {
    size += part.length;
    if (size > MAX_BODY) req.destroy();
    else parts.push(part);
  });
  req.on("end", async () => {
    let answer;
    try {
      const route = routes[req.url];
      answer = route ? await route(JSON.parse(Buffer.concat(parts).toString("utf-8"))) : { failed: `no such call: ${req.url}` };
    } catch (err) {
      answer = { failed: String(err?.message ?? err).split("\n")[0].slice(0, 2000) };
    }
    const body = Buffer.from(JSON.stringify(answer));
    res.writeHead(200, { "content-type": "application/json", "content-length": body.length });
    res.end(body);
  });
});
await new Promise((ok) => server.listen(0, "127.0.0.1", ok));
say({ ready: true, endpoint: `http://127.0.0.1:${server.address().port}` });

for await (const line of createInterface({ input: process.stdin })) {
  try {
    const { dispose: context } = JSON.parse(line);
    if (typeof context === "string") await dispose(context);
  } catch {
    continue; // the harness writes only what it means
  }
}
closing = true;
server.close();
await browser.close().catch(() => {});
rmSync(folder, { recursive: true, force: true });
