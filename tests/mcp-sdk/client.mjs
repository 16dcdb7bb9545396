// Drives `k8s-gpu-mcp serve --local` with the official MCP TypeScript SDK client, as Claude Desktop, Cursor and
// VS Code do, and fails on anything such a host would reject. The SDK validates every tool result's
// structuredContent against the tool's outputSchema, so a schema drift fails here. In operator mode it confirms an
// action as a host does, asking the user through its elicitation handler (protocol 2025-11-25), and checks that a
// client without elicitation must send `confirm` and is told that no person was asked. Protocol 2025-11-25's tasks
// (SEP-1686) are asked for through the SDK's task stream and raw, and a running one is cancelled.
// Usage: node tests/mcp-sdk/client.mjs <path to k8s-gpu-mcp>   (tests/run-all.sh runs it)
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import {
  CallToolResultSchema,
  CancelTaskResultSchema,
  CreateTaskResultSchema,
  ElicitRequestSchema,
  GetTaskResultSchema,
  RELATED_TASK_META_KEY,
} from "@modelcontextprotocol/sdk/types.js";

// The SDK's validator warns about schema keywords it does not know (e.g. schemars' `format: "uint64"`); hosts
// print those warnings, so any is a failure.
const schemaWarnings = [];
const warn = console.warn;
console.warn = (...a) => {
  schemaWarnings.push(a.join(" "));
  warn(...a);
};

const launcher = process.argv[2];
if (!launcher) {
  console.error("usage: node client.mjs <path to k8s-gpu-mcp>");
  process.exit(2);
}

// `elicit`, when given, answers the launcher's elicitation requests as the user would (and declares the capability).
async function connect(extraArgs, elicit) {
  const transport = new StdioClientTransport({
    command: launcher,
    args: ["serve", "--local", "--simulate", "dgx-h100-xid79", ...extraArgs],
    stderr: "pipe", // logs are the server's business; only MCP is on stdout
  });
  const client = new Client(
    { name: "k8s-gpu-mcp-sdk-test", version: "1.0.0" },
    elicit ? { capabilities: { elicitation: { form: {} } } } : {},
  );
  if (elicit) client.setRequestHandler(ElicitRequestSchema, elicit);
  await client.connect(transport);
  return client;
}

// Arguments for a tool from its input schema: node tools target the local node; nothing else is required.
function argsFor(tool) {
  const required = tool.inputSchema.required ?? [];
  const args = {};
  for (const name of required) {
    if (name === "node_name") args.node_name = "local";
    else throw new Error(`${tool.name}: no test value for required argument ${name}`);
  }
  // A node or a workload (watch_gpus): the node, with its shortest window.
  const props = tool.inputSchema.properties ?? {};
  if (props.node_name && props.namespace && !required.includes("node_name")) args.node_name = "local";
  if (props.seconds?.minimum !== undefined) args.seconds = props.seconds.minimum;
  return args;
}

// The registry's read-only tools, as `call list` prints them (launcher/src/mcp/tools/mod.rs), not a list of our own.
const READ_ONLY_TOOLS = JSON.parse(
  execFileSync(launcher, ["--local", "--simulate", "dgx-h100-xid79", "call", "list", "--output", "json"]),
)
  .map((t) => t.name)
  .sort();

const client = await connect([]);
const server = client.getServerVersion();
assert.equal(server.name, "k8s-gpu-mcp");

const { tools } = await client.listTools();
assert.deepEqual(tools.map((t) => t.name).sort(), READ_ONLY_TOOLS, "read-only mode lists exactly these tools");

let progressEvents = 0;
for (const tool of tools) {
  assert.ok(tool.description && tool.description.length > 40, `${tool.name}: a description an AI can use`);
  assert.equal(tool.annotations?.readOnlyHint, true, `${tool.name}: read-only hint`);
  // Workload tools read a namespace's pods from a cluster: in local mode they refuse with the reason.
  if ((tool.inputSchema.required ?? []).includes("namespace")) {
    const r = await client.callTool({ name: tool.name, arguments: { namespace: "ml", job: "train" } });
    assert.equal(r.isError, true, `${tool.name}: refused in local mode`);
    assert.match(r.content[0].text, /local mode/);
    console.log(`ok ${tool.name}: refused in local mode`);
    continue;
  }
  const result = await client.callTool({ name: tool.name, arguments: argsFor(tool) }, undefined, {
    onprogress: () => progressEvents++,
  });
  const text = result.content.map((c) => c.text ?? "").join("\n");
  assert.notEqual(result.isError, true, `${tool.name} failed: ${text}`);
  assert.ok(text.length > 0, `${tool.name}: text content for hosts without structured output`);
  // Every tool declares an outputSchema (else the SDK has nothing to validate and this loop checks nothing).
  assert.ok(tool.outputSchema, `${tool.name}: declares an outputSchema`);
  assert.ok(result.structuredContent, `${tool.name}: structuredContent (it declares an outputSchema)`);
  console.log(`ok ${tool.name}: ${text.split("\n")[0]}`);
}
assert.ok(progressEvents > 0, "node tools report progress when the client asks for it");

// The simulated node has a GPU off the bus: the verdict must say so, in structure and in text.
const health = await client.callTool({ name: "get_gpu_health", arguments: { node_name: "local" } });
assert.equal(health.structuredContent.report.verdict, "unhealthy");
assert.match(health.content[0].text, /xid\.79/);

// Protocol 2025-11-25's own tasks (SEP-1686), which the SDK speaks (docs/tools.md "Tasks"): the server declares
// them, lists the long tools as able to run as tasks, and the SDK's task stream, choosing by that alone, creates a
// real task, polls it and reads its result.
const taskCaps = client.getServerCapabilities().tasks;
assert.deepEqual(taskCaps?.requests?.tools?.call, {}, `capabilities.tasks: ${JSON.stringify(taskCaps)}`);
assert.ok(taskCaps.cancel, `tasks can be cancelled: ${JSON.stringify(taskCaps)}`);
const longTools = tools.filter((t) => t.execution?.taskSupport === "optional").map((t) => t.name);
assert.ok(longTools.includes("scan_gpu_nodes"), `long tools: ${longTools}`);
assert.ok(!longTools.includes("get_gpu_health"), `a short tool is no task: ${longTools}`);
const streamed = [];
for await (const m of client.experimental.tasks.callToolStream({ name: "scan_gpu_nodes", arguments: {} })) {
  streamed.push(m);
}
const seen = JSON.stringify(streamed).slice(0, 600);
const types = streamed.map((m) => m.type);
assert.equal(types[0], "taskCreated", `scan_gpu_nodes through callToolStream: ${seen}`);
assert.equal(types.at(-1), "result", seen);
assert.ok(types.slice(1, -1).length > 0 && types.slice(1, -1).every((t) => t === "taskStatus"), seen);
const streamId = streamed[0].task.taskId;
assert.ok(typeof streamId === "string" && streamId.length >= 32, `a real task id: ${streamId}`);
assert.equal(streamed[0].task.status, "working", seen);
assert.ok(streamed.slice(1, -1).every((m) => m.task.taskId === streamId), seen);
assert.equal(streamed.at(-2).task.status, "completed", seen);
const streamedResult = streamed.at(-1).result;
assert.equal(streamedResult.structuredContent.nodes_total, 1, seen);
assert.equal(streamedResult._meta?.[RELATED_TASK_META_KEY]?.taskId, streamId, seen);
assert.ok(streamedResult.content[0].text.length > 0, "text for hosts without structured output");

// The same requests raw, as the revision writes them.
const created = await client.request(
  { method: "tools/call", params: { name: "scan_gpu_nodes", arguments: {}, task: { ttl: 60000 } } },
  CreateTaskResultSchema,
);
const id = created.task.taskId;
assert.notEqual(id, streamId, "a new task");
assert.equal(created.task.status, "working");
assert.ok(created.task.ttl > 0 && created.task.pollInterval > 0, JSON.stringify(created));
assert.ok(!Number.isNaN(Date.parse(created.task.createdAt)), JSON.stringify(created));
const polled = await client.request({ method: "tasks/get", params: { taskId: id } }, GetTaskResultSchema);
assert.equal(polled.taskId, id);
assert.ok(["working", "completed"].includes(polled.status), JSON.stringify(polled));
// tasks/result waits for the end and answers the tool's own result, naming its task.
const payload = await client.request({ method: "tasks/result", params: { taskId: id } }, CallToolResultSchema);
assert.equal(payload.structuredContent.nodes_total, 1, JSON.stringify(payload).slice(0, 400));
assert.equal(payload.structuredContent.needs_attention_total, 1, "the simulated node (XID 79) needs attention");
assert.equal(payload._meta[RELATED_TASK_META_KEY].taskId, id);
const done = await client.request({ method: "tasks/get", params: { taskId: id } }, GetTaskResultSchema);
assert.equal(done.status, "completed");
// A finished task cannot be cancelled; an unknown one is not found; a short tool is not a task.
const rpcError = async (req, schema) => {
  try {
    const r = await client.request(req, schema);
    return { result: r };
  } catch (e) {
    return { code: e.code, message: e.message };
  }
};
const late = await rpcError({ method: "tasks/cancel", params: { taskId: id } }, CancelTaskResultSchema);
assert.equal(late.code, -32602, JSON.stringify(late));
const unknown = await rpcError({ method: "tasks/get", params: { taskId: `${id}x` } }, GetTaskResultSchema);
assert.equal(unknown.code, -32602, JSON.stringify(unknown));
const shortTask = await rpcError(
  { method: "tools/call", params: { name: "get_gpu_health", arguments: { node_name: "local" }, task: {} } },
  CreateTaskResultSchema,
);
assert.equal(shortTask.code, -32601, JSON.stringify(shortTask));
console.log(`ok 2025-11-25 tasks: ${types.length} stream messages, raw create/get/result, errors`);

// tasks/cancel on a running task: a probe that never answers (its pid written down) is stopped, and the cancel
// answers the task `cancelled`; its result is then an error.
const hangDir = mkdtempSync(join(tmpdir(), "k8s-gpu-mcp-sdk-"));
const hangProbe = join(hangDir, "hang-probe");
writeFileSync(hangProbe, `#!/bin/sh\necho $$ > ${hangDir}/pid\nexec sleep 60\n`, { mode: 0o755 });
const hanging = new Client({ name: "k8s-gpu-mcp-sdk-test", version: "1.0.0" });
await hanging.connect(
  new StdioClientTransport({ command: launcher, args: ["serve", "--local", "--probe-bin", hangProbe], stderr: "pipe" }),
);
const running = await hanging.request(
  { method: "tools/call", params: { name: "scan_gpu_nodes", arguments: {}, task: { ttl: 60000 } } },
  CreateTaskResultSchema,
);
const alive = (pid) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};
const until = async (what, ok) => {
  for (let i = 0; i < 100; i++) {
    const v = ok();
    if (v) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what}: not within 10 s`);
};
const probePid = await until("the probe started", () => {
  try {
    return Number(readFileSync(join(hangDir, "pid"), "utf8"));
  } catch {
    return 0;
  }
});
assert.ok(alive(probePid));
const working = await hanging.request({ method: "tasks/get", params: { taskId: running.task.taskId } }, GetTaskResultSchema);
assert.equal(working.status, "working");
const cancelled = await hanging.request(
  { method: "tasks/cancel", params: { taskId: running.task.taskId } },
  CancelTaskResultSchema,
);
assert.equal(cancelled.taskId, running.task.taskId);
assert.equal(cancelled.status, "cancelled", JSON.stringify(cancelled));
await until("the probe stopped after tasks/cancel", () => !alive(probePid));
const after = await hanging.request({ method: "tasks/get", params: { taskId: running.task.taskId } }, GetTaskResultSchema);
assert.equal(after.status, "cancelled");
await assert.rejects(
  hanging.request({ method: "tasks/result", params: { taskId: running.task.taskId } }, CallToolResultSchema),
  /cancelled/,
);
await hanging.close();
rmSync(hangDir, { recursive: true, force: true });
console.log("ok 2025-11-25 tasks/cancel: the running probe stopped, the task cancelled");

// Bad input is a tool error with a reason, not a protocol failure or a crash.
const bad = await client.callTool({ name: "get_gpu_health", arguments: { node_name: "not-this-node" } });
assert.equal(bad.isError, true);
assert.match(bad.content[0].text, /local/);

// Prompts and the XID catalog resources.
const { prompts } = await client.listPrompts();
assert.ok(prompts.length >= 3, "investigation prompts");
const prompt = await client.getPrompt({ name: prompts[0].name, arguments: { node_name: "local", nodes: "local" } });
assert.ok(prompt.messages.length > 0);
const { resourceTemplates } = await client.listResourceTemplates();
assert.ok(resourceTemplates.some((t) => t.uriTemplate === "xid://catalog/{code}"));
const xid79 = await client.readResource({ uri: "xid://catalog/79" });
assert.match(xid79.contents[0].text, /fallen off the bus/i);
await client.close();

// Operator mode adds the acting tools, marked destructive, and only there.
const operator = await connect(["--mode", "operator"]);
const opTools = (await operator.listTools()).tools;
const acting = opTools.filter((t) => !READ_ONLY_TOOLS.includes(t.name));
assert.ok(acting.length >= 3, `operator tools listed: ${acting.map((t) => t.name)}`);
for (const t of acting) {
  assert.equal(t.annotations?.destructiveHint, true, `${t.name}: destructive hint`);
}
// This client declares no elicitation: `confirm` decides, and the answer says that no person was asked.
const kill = { node_name: "local", pid: 40110, skip_evidence: true };
const unconfirmed = await operator.callTool({ name: "kill_gpu_process", arguments: kill });
assert.equal(unconfirmed.isError, true);
assert.match(unconfirmed.content[0].text, /confirm="local\/pid\/40110"/);
const byArgument = await operator.callTool({
  name: "kill_gpu_process",
  arguments: { ...kill, confirm: "local/pid/40110" },
});
assert.equal(byArgument.structuredContent.confirmed_by, "confirm_argument");
assert.equal(byArgument.structuredContent.human_confirmed, false);
assert.match(byArgument.content[0].text, /NO PERSON WAS ASKED/);
await operator.close();

// A host with elicitation: the user is asked, sees the target, and decides.
const asked = [];
let answer = "accept";
const confirming = await connect(["--mode", "operator"], async (request) => {
  asked.push(request.params.message);
  return answer === "accept" ? { action: "accept", content: { approve: true } } : { action: answer };
});
const approved = await confirming.callTool({ name: "kill_gpu_process", arguments: kill });
assert.notEqual(approved.isError, true, approved.content[0].text);
assert.equal(approved.structuredContent.result, "simulated");
assert.equal(approved.structuredContent.confirmed_by, "elicitation");
assert.equal(approved.structuredContent.human_confirmed, true);
assert.equal(asked.length, 1);
assert.match(asked[0], /local\/pid\/40110/);
answer = "decline";
const declined = await confirming.callTool({
  name: "kill_gpu_process",
  arguments: { node_name: "local", pid: 40117, skip_evidence: true },
});
assert.equal(declined.isError, true);
assert.match(declined.content[0].text, /declined/);
assert.equal(asked.length, 2);
await confirming.close();
console.log("ok operator confirmation: elicitation asked the user (approve, decline); confirm alone says no person was asked");
assert.deepEqual(schemaWarnings, [], "published schemas use only keywords and formats JSON Schema knows");

console.log(`MCP TypeScript SDK client: ${tools.length} tools called, ${progressEvents} progress notifications, prompts, resources and operator listing ok`);
