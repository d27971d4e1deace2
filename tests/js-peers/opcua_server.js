"use strict";
// An OPC UA server built on node-opcua (not asyncua, which the gateway's driver uses): the peer of
// tests/test_interop_opcua.py. Usage: node opcua_server.js PORT PKI_DIR VARIABLES_JSON
// VARIABLES_JSON: [{"name": "Flow", "type": "Double", "value": 12.5, "status": "Good",
//                   "ts": "2024-03-01T08:00:00.123Z"}, ...]; each becomes ns=1;s=Meter.<name>, or takes
// the node id given as "nodeId" (e.g. "g=09087E75-...", in the server's own namespace).
// Prints "ready <endpoint>" once listening. Then each stdin line {"name", "value", "status", "ts"}
// changes one variable and is answered "ok <name>" (or "error <why>").
// Plain CommonJS, nothing newer than Node 18 (Debian 12's nodejs).
const readline = require("readline");
// Node 18 has Web Crypto but not yet as a global (Node 19 made it one); node-opcua looks for the global
if (!globalThis.crypto) {
  globalThis.crypto = require("crypto").webcrypto;
}
const { OPCUAServer, OPCUACertificateManager, DataType, StatusCodes } = require("node-opcua");

function fail(why) {
  process.stderr.write(`opcua_server.js: ${why}\n`);
  process.exit(2);
}

const [portArg, pkiDir, varsJson] = process.argv.slice(2);
if (!portArg || !pkiDir || !varsJson) {
  fail("usage: node opcua_server.js PORT PKI_DIR VARIABLES_JSON");
}

function statusOf(name) {
  const code = StatusCodes[name || "Good"];
  if (!code) {
    fail(`unknown status code ${name}`);
  }
  return code;
}

async function main() {
  const variables = JSON.parse(varsJson);
  // the certificate store in the test's temporary folder, not in the user's home
  const serverCertificateManager = new OPCUACertificateManager({ rootFolder: pkiDir, automaticallyAcceptUnknownCertificate: true });
  const server = new OPCUAServer({
    port: Number(portArg),
    hostname: "127.0.0.1",
    resourcePath: "/parkmon-peer",
    serverCertificateManager,
    buildInfo: { productName: "parkmon interop peer (node-opcua)" },
  });
  await server.initialize();
  const addressSpace = server.engine.addressSpace;
  const ns = addressSpace.getOwnNamespace();
  const meter = ns.addObject({ organizedBy: addressSpace.rootFolder.objects, browseName: "Meter" });
  const nodes = {};
  for (const v of variables) {
    const dataType = DataType[v.type];
    if (dataType === undefined) {
      fail(`unknown data type ${v.type}`);
    }
    const node = ns.addVariable({
      componentOf: meter,
      browseName: v.name,
      nodeId: v.nodeId || `s=Meter.${v.name}`,
      dataType: v.type,
      minimumSamplingInterval: 0, // report each change as it is set, not on a sampling clock
    });
    node.setValueFromSource({ dataType, value: v.value }, statusOf(v.status), new Date(v.ts));
    nodes[v.name] = { node, dataType };
  }
  await server.start();
  process.stdout.write(`ready ${server.getEndpointUrl()}\n`);

  const lines = readline.createInterface({ input: process.stdin });
  lines.on("line", (line) => {
    try {
      const change = JSON.parse(line);
      const target = nodes[change.name];
      if (!target) {
        throw new Error(`no variable ${change.name}`);
      }
      target.node.setValueFromSource({ dataType: target.dataType, value: change.value }, statusOf(change.status),
        new Date(change.ts));
      process.stdout.write(`ok ${change.name}\n`);
    } catch (err) {
      process.stdout.write(`error ${err.message}\n`);
    }
  });
  // the test closing our stdin (or dying) ends the server
  lines.on("close", () => {
    server.shutdown(0).then(() => process.exit(0));
  });
}

main().catch((err) => fail(err.stack || String(err)));
