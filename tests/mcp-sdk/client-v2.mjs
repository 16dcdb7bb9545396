// Drives `k8s-gpu-mcp serve --local --mode operator` with the official MCP TypeScript SDK v2 client
// (@modelcontextprotocol/client) pinned to protocol 2026-07-28: an operator action is confirmed by the user through
// the multi-round-trip input request (the SDK fulfils it with its elicitation handler and retries the call with the
// answer and the echoed requestState); a decline refuses; a forged requestState is refused; a client that declares
// no elicitation must send `confirm` and is told that no person was asked.
// Usage: node tests/mcp-sdk/client-v2.mjs <path to k8s-gpu-mcp>   (tests/run-all.sh runs it)
import assert from "node:assert/strict";
import { Client } from "@modelcontextprotocol/client";
import { StdioClientTransport } from "@modelcontextprotocol/client/stdio";

const launcher = process.argv[2];
if (!launcher) {
  console.error("usage: node client-v2.mjs <path to k8s-gpu-mcp>");
  process.exit(2);
}

// `elicit`, when given, answers the launcher's confirmation as the user would (and declares elicitation).
async function connect(elicit, options = {}) {
  const transport = new StdioClientTransport({
    command: launcher,
    args: ["serve", "--local", "--simulate", "dgx-h100-xid79", "--mode", "operator"],
    stderr: "pipe", // logs are the server's business; only MCP is on stdout
  });
  const client = new Client(
    { name: "k8s-gpu-mcp-sdk-v2-test", version: "1.0.0" },
    {
      versionNegotiation: { mode: { pin: "2026-07-28" } },
      ...(elicit ? { capabilities: { elicitation: { form: {} } } } : {}),
      ...options,
    },
  );
  if (elicit) client.setRequestHandler("elicitation/create", elicit);
  await client.connect(transport);
  assert.equal(client.getNegotiatedProtocolVersion(), "2026-07-28");
  return client;
}

const text = (r) => r.content.map((c) => c.text ?? "").join("\n");
const kill = (pid) => ({ name: "kill_gpu_process", arguments: { node_name: "local", pid, skip_evidence: true } });

// The user approves, then declines.
const asked = [];
let answer = "accept";
const client = await connect(async (request) => {
  asked.push(request.params.message);
  return answer === "accept" ? { action: "accept", content: { approve: true } } : { action: answer };
});
const approved = await client.callTool(kill(40110));
assert.notEqual(approved.isError, true, text(approved));
assert.equal(approved.structuredContent.result, "simulated");
assert.equal(approved.structuredContent.confirmed_by, "input_request");
assert.equal(approved.structuredContent.human_confirmed, true);
assert.equal(asked.length, 1);
assert.match(asked[0], /local\/pid\/40110/);
answer = "decline";
const declined = await client.callTool(kill(40117));
assert.equal(declined.isError, true);
assert.match(text(declined), /declined/);
assert.equal(asked.length, 2);
// A dry run asks no one.
const dry = await client.callTool({ name: "reset_gpu", arguments: { node_name: "local", gpu: "1", dry_run: true } });
assert.equal(dry.structuredContent.confirmed_by, "not_needed");
assert.equal(asked.length, 2);
await client.close();

// Manual rounds: the input request comes back to the caller; a forged requestState is refused, the genuine one
// (answered with the user's approval) acts once.
const manual = await connect(async () => ({ action: "accept", content: { approve: true } }), {
  inputRequired: { autoFulfill: false },
});
const first = await manual.callTool(kill(40110), { allowInputRequired: true });
assert.equal(first.resultType, "input_required", JSON.stringify(first));
const [key] = Object.keys(first.inputRequests);
assert.equal(first.inputRequests[key].method, "elicitation/create");
const yes = { [key]: { action: "accept", content: { approve: true } } };
const forged = await manual.callTool(
  { ...kill(40110), inputResponses: yes, requestState: "forged" },
  { allowInputRequired: true },
);
assert.equal(forged.isError, true, JSON.stringify(forged));
assert.match(text(forged), /unknown, already used or expired/);
const genuine = await manual.callTool(
  { ...kill(40110), inputResponses: yes, requestState: first.requestState },
  { allowInputRequired: true },
);
assert.equal(genuine.structuredContent?.confirmed_by, "input_request", JSON.stringify(genuine));
const replayed = await manual.callTool(
  { ...kill(40110), inputResponses: yes, requestState: first.requestState },
  { allowInputRequired: true },
);
assert.equal(replayed.isError, true, JSON.stringify(replayed));
await manual.close();

// No elicitation declared: `confirm` decides, and the answer says that no person was asked.
const plain = await connect(undefined);
const unconfirmed = await plain.callTool(kill(40110));
assert.equal(unconfirmed.isError, true);
assert.match(text(unconfirmed), /confirm="local\/pid\/40110"/);
const byArgument = await plain.callTool({
  name: "kill_gpu_process",
  arguments: { ...kill(40110).arguments, confirm: "local/pid/40110" },
});
assert.equal(byArgument.structuredContent.confirmed_by, "confirm_argument");
assert.equal(byArgument.structuredContent.human_confirmed, false);
assert.match(text(byArgument), /NO PERSON WAS ASKED/);
await plain.close();

console.log(
  "MCP TypeScript SDK v2 client (2026-07-28): input request approved and declined, forged and replayed requestState refused, confirm without a person said so",
);
