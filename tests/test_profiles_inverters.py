"""Inverter profiles against devices laid out from their manuals' register tables (see tests/test_profiles_rig.py).

32-bit values are chosen above 65535 so a wrong word order cannot pass; scales are the documents' gains."""

from __future__ import annotations

import pytest

from tests.test_profiles_rig import Case, check

HR, IR = "holding", "input"

CASES = [
    # SunSpec 103 as SolarEdge's technical note numbers it (from 1): value registers with *_SF beside them
    Case("sunspec_inverter_103", [
        (HR, 40084, "int16", "ABCD", 12345), (HR, 40085, "int16", "ABCD", -1),  # I_AC_Power, its SF
        (HR, 40086, "uint16", "ABCD", 5001), (HR, 40087, "int16", "ABCD", -2),  # I_AC_Frequency, its SF
        (HR, 40094, "uint32", "ABCD", 123456789), (HR, 40096, "int16", "ABCD", 0),  # I_AC_Energy_WH, its SF
        (HR, 40101, "int16", "ABCD", 4321), (HR, 40102, "int16", "ABCD", 0),  # I_DC_Power, its SF
        (HR, 40108, "uint16", "ABCD", 4),  # I_Status 4 = MPPT
    ], {"power": 1.2345,  # 12345 x 10^-1 = 1234.5 W -> kW
        "frequency": 50.01,  # 5001 x 10^-2
        "generation": 123456.789,  # 123 456 789 Wh -> kWh
        "dc_power": 4.321, "state": 4.0}, offset=1),
    # SunSpec 113 (float), Fronius float map wire addresses: ID 113 at 40069, length 60, then the floats
    Case("sunspec_inverter_113", [
        (HR, 40069, "uint16", "ABCD", 113), (HR, 40070, "uint16", "ABCD", 60),
        (HR, 40071, "float32", "ABCD", 24.5),  # A
        (HR, 40085, "float32", "ABCD", 231.5),  # PhVphA
        (HR, 40091, "float32", "ABCD", 15000.0),  # W
        (HR, 40093, "float32", "ABCD", 50.0),  # Hz
        (HR, 40101, "float32", "ABCD", 9876543.0),  # WH (exact in float32: below 2^24)
        (HR, 40107, "float32", "ABCD", 15500.0),  # DCW
        (HR, 40117, "uint16", "ABCD", 4),  # St 4 = MPPT
    ], {"current": 24.5, "voltage_a": 231.5, "power": 15.0, "frequency": 50.0,
        "generation": 9876.543,  # 9 876 543 Wh / 1000
        "dc_power": 15.5, "state": 4.0}),
    # Huawei Modbus Interface Definitions: holding, big-endian, value / gain
    Case("huawei_sun2000", [
        (HR, 32064, "int32", "ABCD", 25500),  # input power, gain 1000 kW
        (HR, 32069, "uint16", "ABCD", 2312),  # phase A voltage, gain 10
        (HR, 32072, "int32", "ABCD", 36250),  # phase A current, gain 1000
        (HR, 32080, "int32", "ABCD", 124800),  # active power, gain 1000 kW (above 65535)
        (HR, 32085, "uint16", "ABCD", 5001),  # grid frequency, gain 100
        (HR, 32089, "uint16", "ABCD", 0x0200),  # device status 0x0200 = on-grid
        (HR, 32106, "uint32", "ABCD", 12345678),  # accumulated energy yield, gain 100 kWh
    ], {"dc_power": 25.5, "voltage_a": 231.2, "current_a": 36.25,
        "power": 124.8,  # 124800 / 1000 kW
        "frequency": 50.01, "state": 512.0,
        "generation": 123456.78}),  # 12 345 678 / 100
    # Sungrow string inverter protocol: input registers numbered from 1, U32 low word first
    Case("sungrow_sg", [
        (IR, 5004, "uint32", "CDAB", 98765),  # total power yields, kWh
        (IR, 5017, "uint32", "CDAB", 105000),  # total DC power, W
        (IR, 5019, "uint16", "ABCD", 2301),  # phase A voltage, 0.1 V
        (IR, 5022, "uint16", "ABCD", 1525),  # phase A current, 0.1 A
        (IR, 5031, "uint32", "CDAB", 100000),  # total active power, W
        (IR, 5036, "uint16", "ABCD", 500),  # grid frequency, 0.1 Hz
        (IR, 5038, "uint16", "ABCD", 0),  # work state 0x0000 = run
    ], {"generation": 98765.0, "dc_power": 105.0, "voltage_a": 230.1, "current_a": 152.5,
        "power": 100.0,  # 100 000 W / 1000
        "frequency": 50.0, "state": 0.0}, offset=1),
    # Growatt protocol II, TL3-X input registers 0-based, U32 high word first, 0.1 W / 0.01 Hz / 0.1 kWh
    Case("growatt_tl3x", [
        (IR, 0, "uint16", "ABCD", 1),  # status 1 = normal
        (IR, 1, "uint32", "ABCD", 523456),  # Ppv, 0.1 W
        (IR, 35, "uint32", "ABCD", 507890),  # Pac, 0.1 W
        (IR, 37, "uint16", "ABCD", 5002), (IR, 38, "uint16", "ABCD", 2315), (IR, 39, "uint16", "ABCD", 731),
        (IR, 55, "uint32", "ABCD", 9876543),  # Eac total, 0.1 kWh
    ], {"state": 1.0,
        "dc_power": 52.3456,  # 523 456 x 0.1 W = 52 345.6 W -> kW
        "power": 50.789,  # 507 890 x 0.1 W = 50 789 W -> kW
        "frequency": 50.02, "voltage": 231.5, "current": 73.1,
        "generation": 987654.3}),  # 9 876 543 x 0.1 kWh
    # Solis protocol: input registers numbered from 1 (3005 = active power), U32 high word first
    Case("solis_inv", [
        (IR, 3005, "uint32", "ABCD", 70123), (IR, 3007, "uint32", "ABCD", 72000),
        (IR, 3009, "uint32", "ABCD", 654321),  # total energy, kWh
        (IR, 3036, "uint16", "ABCD", 2298), (IR, 3043, "uint16", "ABCD", 4998),
        (IR, 3072, "uint16", "ABCD", 1),  # working status bit 0 = normal
    ], {"power": 70.123, "dc_power": 72.0, "generation": 654321.0,
        "voltage": 229.8,  # 2298 x 0.1 V
        "frequency": 49.98,  # 4998 x 0.01 Hz
        "state": 1.0}, offset=1),
    # SMA Modbus profile, unit id 3: S32 W, U64 Wh, U32 TAGLIST
    Case("sma_sunny_tripower", [
        (HR, 30201, "uint32", "ABCD", 307),  # Condition 307 = Ok
        (HR, 30513, "uint64", "ABCD", 45678912345),  # Total yield, Wh
        (HR, 30775, "int32", "ABCD", 8250),  # Power, W
    ], {"state": 307.0,
        "generation": 45678912.345,  # 45 678 912 345 Wh / 1000
        "power": 8.25}, unit=3),
    # at night SMA reports the power as NaN (0x80000000 for S32) and a status it cannot give as 0xFFFFFD (the
    # lower 24 bits of a U32 status): bad quality, the yield still reads
    Case("sma_sunny_tripower", [
        (HR, 30201, "uint32", "ABCD", 0xFFFFFD),
        (HR, 30513, "uint64", "ABCD", 45678912345), (HR, 30775, "int32", "ABCD", -2147483648),
    ], {"state": "bad:sensor_failure", "power": "bad:sensor_failure", "generation": 45678912.345}, unit=3,
        partial=True),
]


@pytest.mark.parametrize("case", CASES, ids=[f"{c.profile}{'-partial' if c.partial else ''}" for c in CASES])
def test_inverter_profile_reads_its_manuals_layout(case: Case) -> None:
    check(case)
