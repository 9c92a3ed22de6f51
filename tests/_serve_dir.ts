/** A tiny static file server on 127.0.0.1 for tests that import the repository by URL. */

/** A running server; `await using` stops it. */
export interface DirServer extends AsyncDisposable {
  /** Base URL ending in `/`. */
  url: string;
  /** Paths requested so far. */
  requests: string[];
}

const TYPES: Record<string, string> = {
  ts: "application/typescript",
  js: "application/javascript",
  json: "application/json",
  cpp: "text/plain",
  c: "text/plain",
};

/** Serves `root` read-only on an ephemeral loopback port. */
export function serveDir(root: string): DirServer {
  const requests: string[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const path = decodeURIComponent(new URL(req.url).pathname);
    requests.push(path);
    if (path.includes("..")) return new Response("bad path", { status: 400 });
    try {
      const body = await Deno.readFile(`${root}${path}`);
      const ext = path.slice(path.lastIndexOf(".") + 1);
      return new Response(body, { headers: { "content-type": TYPES[ext] ?? "application/octet-stream" } });
    } catch {
      return new Response("not found", { status: 404 });
    }
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}/`,
    requests,
    async [Symbol.asyncDispose]() {
      await server.shutdown();
    },
  };
}
