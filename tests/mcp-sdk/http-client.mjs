// The official MCP TypeScript SDK client against `k8s-gpu-mcp serve --http` (tests/e2e/http.rs runs it): with an
// access token from the OpenID provider it lists the tools and calls one, validating the result against its
// outputSchema; without one, it follows the server's 401 to the protected resource metadata and the provider's
// metadata, and asks to send the person to the provider's authorization endpoint for this server (OAuth 2.1 with
// the resource indicator), as a host does before a login.
// Usage: node tests/mcp-sdk/http-client.mjs <server url> <access token> <label selector> <issuer>
import assert from "node:assert/strict";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const [url, token, selector, issuer] = process.argv.slice(2);
if (!issuer) {
  console.error("usage: node http-client.mjs <server url> <access token> <label selector> <issuer>");
  process.exit(2);
}

// A host's OAuth state: a pre-registered client, the token it holds (or none), and where it would send the person.
function provider(accessToken) {
  const seen = { redirect: null };
  return {
    seen,
    get redirectUrl() {
      return "http://127.0.0.1:1/callback";
    },
    get clientMetadata() {
      return { client_name: "e2e host", redirect_uris: ["http://127.0.0.1:1/callback"] };
    },
    clientInformation: () => ({ client_id: "mcp-host", client_secret: "mcp-host-secret" }),
    tokens: () => (accessToken ? { access_token: accessToken, token_type: "Bearer" } : undefined),
    saveTokens: () => {},
    redirectToAuthorization: (u) => {
      seen.redirect = u;
    },
    saveCodeVerifier: () => {},
    codeVerifier: () => "verifier",
  };
}

async function connect(p) {
  const client = new Client({ name: "k8s-gpu-mcp-http-test", version: "1.0.0" });
  await client.connect(new StreamableHTTPClientTransport(new URL(url), { authProvider: p }));
  return client;
}

// With the person's token: the tools, and one call whose result the SDK validates against the outputSchema.
const client = await connect(provider(token));
const { tools } = await client.listTools();
assert.ok(tools.some((t) => t.name === "list_gpu_nodes"), "list_gpu_nodes is listed");
const r = await client.callTool({ name: "list_gpu_nodes", arguments: { label_selector: selector } });
assert.notEqual(r.isError, true, JSON.stringify(r));
assert.equal(r.structuredContent.nodes.length, 1, JSON.stringify(r.structuredContent));
await client.close();

// Without a token: the 401 leads the SDK to the metadata, the provider and its authorization endpoint.
const none = provider(undefined);
await assert.rejects(connect(none), (e) => /Unauthorized/i.test(`${e.name} ${e.message}`));
assert.ok(none.seen.redirect, "the SDK found no way to send the person to log in");
const auth = new URL(none.seen.redirect);
assert.equal(`${auth.origin}${auth.pathname}`, `${issuer}/auth`, auth.href);
assert.equal(auth.searchParams.get("resource"), url, auth.href);
assert.equal(auth.searchParams.get("client_id"), "mcp-host", auth.href);
console.log(`SDK over HTTP: ${tools.length} tools, list_gpu_nodes answered; without a token sent to ${auth.origin}${auth.pathname}`);
