// A Sparkplug B edge node for parkmon's tests, built on Eclipse Tahu's JavaScript client (sparkplug-client
// on npm): the payloads, their protobuf encoding, seq and bdSeq are Tahu's, not parkmon's.
//
//   node sparkplug_node.js <mqtt url> <group> <node> [qos]
//
// Driven by JSON lines on stdin, one command each:
//   {"cmd": "nbirth"|"ndata", "payload": {...}}            payload as sparkplug-payload takes it
//   {"cmd": "dbirth"|"ddata"|"ddeath", "device": "...", "payload": {...}}
//   {"cmd": "skip", "n": 2}      seq numbers used up without publishing: a gap the host must notice
//   {"cmd": "stop"}              publishes NDEATH and disconnects (Tahu's stop with publishDeath)
// and tells on stdout, one JSON line per event: ready, birth (Tahu asks for births on every connect; the last
// births given are published again), ncmd (with its metrics; a rebirth request republishes the births), done.
// qos 1: Tahu publishes at QoS 0 (the specification's choice for data); some edge nodes are set to 1, and the
// reconnect test needs the broker to keep messages for a bridge that is away.
"use strict";

const sparkplug = require("sparkplug-client");
const readline = require("readline");

const [url, groupId, edgeNode, qosArg] = process.argv.slice(2);
const qos = Number(qosArg || 0);
const client = sparkplug.newClient({
  serverUrl: url, groupId, edgeNode, clientId: `tahu-${edgeNode}`, username: "", password: "",
  publishDeath: true, version: "spBv1.0", keepalive: 5,
});
const mqttPublish = client.client.publish.bind(client.client);
client.client.publish = (topic, payload, opts, cb) => mqttPublish(topic, payload, { ...(opts || {}), qos }, cb);

const say = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");
const copy = (o) => JSON.parse(JSON.stringify(o));
let nbirth = null;
const dbirths = new Map();

function publishBirths() {
  if (!nbirth) return;
  // a fresh copy each time: Tahu appends bdSeq to the payload it is given; a new timestamp marks a new birth
  client.publishNodeBirth({ ...copy(nbirth), timestamp: Date.now() });
  for (const [device, p] of dbirths) client.publishDeviceBirth(device, { ...copy(p), timestamp: Date.now() });
}

client.on("birth", () => {
  say({ event: "birth", republished: nbirth !== null });
  publishBirths();
});
client.on("ncmd", (payload) => {
  const metrics = (payload.metrics || []).map((m) => ({ name: m.name, value: m.value }));
  say({ event: "ncmd", metrics });
  if (metrics.some((m) => m.name === "Node Control/Rebirth" && m.value === true)) publishBirths();
});
client.on("error", (err) => say({ event: "error", message: String(err) }));

const rl = readline.createInterface({ input: process.stdin });
rl.on("line", (line) => {
  const c = JSON.parse(line);
  if (c.cmd === "nbirth") {
    nbirth = c.payload;
    client.publishNodeBirth(copy(c.payload));
  } else if (c.cmd === "dbirth") {
    dbirths.set(c.device, c.payload);
    client.publishDeviceBirth(c.device, copy(c.payload));
  } else if (c.cmd === "ndata") {
    client.publishNodeData(copy(c.payload));
  } else if (c.cmd === "ddata") {
    client.publishDeviceData(c.device, copy(c.payload), c.options);  // options: {compress: true, algorithm}
  } else if (c.cmd === "ddeath") {
    dbirths.delete(c.device);
    client.publishDeviceDeath(c.device, copy(c.payload));
  } else if (c.cmd === "skip") {
    for (let i = 0; i < c.n; i++) client.incrementSeqNum();
  } else if (c.cmd === "stop") {
    client.stop();
    say({ event: "done" });
    setTimeout(() => process.exit(0), 200);
    return;
  }
  say({ event: "ok", cmd: c.cmd, seq: client.seq });
});
client.on("connect", () => say({ event: "ready" }));
