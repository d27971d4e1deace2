"""Storage and flow-meter profiles against devices laid out from their manuals' register tables
(see tests/test_profiles_rig.py)."""

from __future__ import annotations

import pytest

from tests.test_profiles_rig import Case, check

HR, IR = "holding", "input"

CASES = [
    # Huawei energy storage registers: SOC gain 10, power I32 W (> 0 charging), totals U32 in 0.01 kWh
    Case("huawei_luna2000", [
        (HR, 37760, "uint16", "ABCD", 856), (HR, 37762, "uint16", "ABCD", 2),  # 85.6 %, 2 = running
        (HR, 37765, "int32", "ABCD", -3500),  # discharging 3.5 kW
        (HR, 37780, "uint32", "ABCD", 1234500), (HR, 37782, "uint32", "ABCD", 1100025),
    ], {"soc": 85.6, "state": 2.0,
        "power": 3.5,  # -3500 W charging = +3.5 kW discharging
        "charged": 12345.0,  # 1 234 500 x 0.01 kWh
        "discharged": 11000.25}),
    # Sungrow SH register lists: numbered from 1, input registers, U32 low word first
    Case("sungrow_sh", [
        (IR, 13000, "uint16", "ABCD", 64),  # system state 64 = running
        (IR, 13003, "uint32", "CDAB", 123456),  # total PV generation, 0.1 kWh
        (IR, 13023, "uint16", "ABCD", 753),  # battery level, 0.1 %
        (IR, 5017, "uint32", "CDAB", 12345),  # total DC power, W
    ], {"state": 64.0, "pv_generation": 12345.6, "soc": 75.3,
        "pv_power": 12.345}, offset=1),  # 12 345 W / 1000
    # the FX gas totalizer: the 20 words of the answer frame its source prints (03 00 0A 00 14), unchanged
    Case("fuxin_gas_flow_totalizer", [
        (HR, 0x000A, "float32", "ABCD", [
            0x4B3C, 0x6156,  # working total 12 345 686 m3
            0x449B, 0x6392,  # standard total
            0x0000, 0x0000,  # preset flow
            0x4022, 0x0C4A,  # standard flow 2.532 m3/h
            0x0000, 0x1243, 0x1116,  # standard total BCD 1243.1116
            0x4020, 0x0000,  # working flow 2.5 m3/h
            0x1228, 0x5686, 0x4222,  # working total BCD 12345686.4222
            0x41AD, 0x3127,  # temperature
            0x42CC, 0x6C8B,  # pressure
        ]),
    ], {
        # 0x449B6392: exponent 0x89 - 127 = 10, 1024 x (1 + 0x1B6392 / 2^23 = 1 + 1794962 / 8388608) = 1243.1116
        "volume": 1243.1116,
        # 0x41AD3127: exponent 0x83 - 127 = 4, 16 x (1 + 0x2D3127 / 2^23 = 1 + 2961703 / 8388608) = 21.649
        "temperature": 21.649,
        # 0x42CC6C8B: exponent 0x85 - 127 = 6, 64 x (1 + 0x4C6C8B / 2^23 = 1 + 5008523 / 8388608) = 102.212 kPa
        "pressure": 0.102212,
    }),
    # TUF-2000 5.1.1 MODBUS REGISTERS TABLE: REG0001 flow REAL4 m3/h, REG0009 positive accumulator LONG,
    # low word first; REG0001 is sent as address 0
    Case("tuf2000m_ultrasonic", [
        (HR, 1, "float32", "CDAB", [0x806B, 0x4212]),  # the words a bench TUF-2000M sent, low word first
        (HR, 9, "int32", "CDAB", 123456),
        (HR, 11, "float32", "CDAB", 0.5),  # the decimal fraction, not read by the profile
    ], {"flow": 36.625408,  # 0x4212806B: exponent 0x84 - 127 = 5, 32 x (1 + 0x12806B / 2^23 = 1 + 1212523 / 8388608)
        "volume": 123456.0}, offset=1),
]


@pytest.mark.parametrize("case", CASES, ids=[c.profile for c in CASES])
def test_storage_and_flow_profile_reads_its_manuals_layout(case: Case) -> None:
    check(case)
