"use strict";
// A Modbus TCP server built on modbus-serial's ServerTCP (not pymodbus, which the gateway's driver uses): the
// peer of tests/test_interop_modbus.py. Usage: node modbus_server.js PORT UNIT TABLES_JSON
// TABLES_JSON: {"holding": {"0": 17274, ...}, "input": {...}, "coil": {"0": true}, "discrete": {...}}: the
// raw 16-bit words and bits the device holds. A read that touches an address not listed gets exception 02
// (illegal data address), as a meter answers a read past its register map.
// Prints "ready <port>" once listening; ends when its stdin closes. Plain CommonJS for Node 18.
const ModbusRTU = require("modbus-serial");

function fail(why) {
  process.stderr.write(`modbus_server.js: ${why}\n`);
  process.exit(2);
}

const [portArg, unitArg, tablesJson] = process.argv.slice(2);
if (!portArg || !unitArg || !tablesJson) {
  fail("usage: node modbus_server.js PORT UNIT TABLES_JSON");
}
const tables = JSON.parse(tablesJson);

function illegalAddress(table, address) {
  const err = new Error(`no ${table} ${address}`);
  err.modbusErrorCode = 0x02;
  return err;
}

function lookup(table, address) {
  const held = (tables[table] || {})[String(address)];
  if (held === undefined) {
    throw illegalAddress(table, address);
  }
  return held;
}

function block(table) {
  // the whole request or nothing: one missing register refuses the read, as devices do
  return (address, length) => {
    const words = [];
    for (let i = 0; i < length; i++) {
      words.push(lookup(table, address + i));
    }
    return words;
  };
}

const vector = {
  getMultipleHoldingRegisters: block("holding"),
  getHoldingRegister: (address) => lookup("holding", address),
  getMultipleInputRegisters: block("input"),
  getInputRegister: (address) => lookup("input", address),
  getCoil: (address) => lookup("coil", address),
  getDiscreteInput: (address) => lookup("discrete", address),
};

const server = new ModbusRTU.ServerTCP(vector, { host: "127.0.0.1", port: Number(portArg), unitID: Number(unitArg) });
server.on("serverError", (err) => fail(err.message));
server.on("initialized", () => process.stdout.write(`ready ${portArg}\n`));
process.stdin.on("data", () => {});
process.stdin.on("end", () => process.exit(0));
