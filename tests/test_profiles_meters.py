"""Meter profiles against devices laid out from their manuals' register tables (see tests/test_profiles_rig.py).

Rows carry the register numbers as each document prints them and the raw value the meter would hold; the
expected engineering values are worked by hand from the document's unit and scale, arithmetic alongside."""

from __future__ import annotations

import pytest

from tests.test_profiles_rig import Case, check

HR, IR = "holding", "input"
F = "float32"

CASES = [
    # CHINT DTSU666, aggsoft's list of the manual: 2006H.. float, units V / A / W / kWh, function 03
    Case("chint_dtsu666", [
        (HR, 0x2006, F, "ABCD", 229.5), (HR, 0x2008, F, "ABCD", 230.1), (HR, 0x200A, F, "ABCD", 228.9),
        (HR, 0x200C, F, "ABCD", 12.5), (HR, 0x200E, F, "ABCD", 11.75), (HR, 0x2010, F, "ABCD", 13.0),
        (HR, 0x2012, F, "ABCD", -5432.0),  # Pt in W, negative: exporting
        (HR, 0x202A, F, "ABCD", 0.95), (HR, 0x2044, F, "ABCD", 50.02),
        (HR, 0x401E, F, "ABCD", 123456.5), (HR, 0x4028, F, "ABCD", 789.25),
    ], {"voltage_a": 229.5, "voltage_b": 230.1, "voltage_c": 228.9, "current_a": 12.5, "current_b": 11.75,
        "current_c": 13.0,
        "power": -5.432,  # -5432 W / 1000 = -5.432 kW
        "power_factor": 0.95, "frequency": 50.02, "import": 123456.5, "export": 789.25}),
    # CHINT DDSU666, field references: 0x2000.. float32 high word first, 0-based, P in kW
    Case("chint_ddsu666", [
        (HR, 0x2000, F, "ABCD", 221.3), (HR, 0x2002, F, "ABCD", 4.56), (HR, 0x2004, F, "ABCD", 0.987),
        (HR, 0x200A, F, "ABCD", 0.978), (HR, 0x200E, F, "ABCD", 49.97), (HR, 0x4000, F, "ABCD", 3210.75),
        (HR, 0x400A, F, "ABCD", 12.5),
    ], {"voltage": 221.3, "current": 4.56, "power": 0.987, "power_factor": 0.978, "frequency": 49.97,
        "import": 3210.75, "export": 12.5}),
    # Eastron SDM630 protocol: input registers numbered 30001.., float32, W and kWh
    Case("eastron_sdm630", [
        (IR, 30001, F, "ABCD", 231.2), (IR, 30003, F, "ABCD", 229.8), (IR, 30005, F, "ABCD", 230.4),
        (IR, 30007, F, "ABCD", 8.25), (IR, 30009, F, "ABCD", 7.5), (IR, 30011, F, "ABCD", 9.0),
        (IR, 30053, F, "ABCD", 5678.0), (IR, 30063, F, "ABCD", 0.92), (IR, 30071, F, "ABCD", 50.01),
        (IR, 30073, F, "ABCD", 45678.5), (IR, 30075, F, "ABCD", 12.25),
    ], {"voltage_l1": 231.2, "voltage_l2": 229.8, "voltage_l3": 230.4, "current_l1": 8.25, "current_l2": 7.5,
        "current_l3": 9.0,
        "power": 5.678,  # 5678 W / 1000
        "power_factor": 0.92, "frequency": 50.01, "import": 45678.5, "export": 12.25}, offset=30001),
    # Eastron SDM120: the same numbering, single phase
    Case("eastron_sdm120", [
        (IR, 30001, F, "ABCD", 229.9), (IR, 30007, F, "ABCD", 3.25), (IR, 30013, F, "ABCD", 742.5),
        (IR, 30031, F, "ABCD", 0.99), (IR, 30071, F, "ABCD", 49.99), (IR, 30073, F, "ABCD", 1234.5),
        (IR, 30075, F, "ABCD", 0.25),
    ], {"voltage": 229.9, "current": 3.25,
        "power": 0.7425,  # 742.5 W / 1000
        "power_factor": 0.99, "frequency": 49.99, "import": 1234.5, "export": 0.25}, offset=30001),
    # Eastron SDM72D-M V2: the words a real meter sent (node-modbus-serial issue #509), decoded by hand
    Case("eastron_sdm72d", [
        (IR, 30053, F, "ABCD", [50195, 7819]),  # 0xC413 0x1E8B
        (IR, 30073, F, "ABCD", [17903, 45703]),  # 0x45EF 0xB287
        (IR, 30075, F, "ABCD", [17826, 26757]),  # 0x45A2 0x6885
    ], {
        # 0xC4131E8B: sign -, exponent 0x88 - 127 = 9, mantissa 1 + 0x131E8B / 2^23 = 1 + 1253003 / 8388608
        # = 1.14936876..., x 512 = -588.4772 W -> -0.5884772 kW
        "power": -0.5884772,
        # 0x45EFB287: exponent 0x8B - 127 = 12, 4096 x (1 + 0x6FB287 / 2^23 = 1 + 7320199 / 8388608) = 7670.3159
        "import": 7670.3159,
        # 0x45A26885: 4096 x (1 + 0x226885 / 2^23 = 1 + 2254981 / 8388608) = 5197.0649
        "export": 5197.0649,
    }, offset=30001),
    # Delixi DTSU6606 protocol (HslCommunication's transcription): 23 int16 from 768 in the order Ua Ub Uc,
    # Ia Ib Ic, Pa Pb Pc Pt, Qa Qb Qc Qt, Sa Sb Sc St, PFa PFb PFc PFt, F
    Case("delixi_dtsu6606", [
        (HR, 768 + i, "int16", "ABCD", raw) for i, raw in enumerate([
            2201, 2215, 2198,  # V x 10
            1250, 1175, 1302,  # A x 100
            852, 801, 866, 2519,  # kW x 100
            120, 115, 131, 366,  # kvar x 100 (not read)
            862, 810, 876, 2545,  # kVA x 100 (not read)
            988, 989, 987, -990,  # PF x 1000, total leading
            4998,  # Hz x 100
        ])
    ], {"voltage_a": 220.1, "voltage_b": 221.5, "voltage_c": 219.8,
        "current_a": 12.5, "current_b": 11.75, "current_c": 13.02,
        "power": 25.19,  # 2519 / 100 kW
        "power_factor": -0.99,  # -990 / 1000
        "frequency": 49.98}),
    # Acrel ADL3000-E 9.1 ADDR list: 000AH / 0014H, 4 bytes, E = data x PT x CT x 0.01 kWh (PT = CT = 1)
    Case("acrel_adl3000e", [
        (HR, 0x000A, "uint32", "ABCD", 1234567),  # words 0x0012 0xD687: the high word matters
        (HR, 0x0014, "uint32", "ABCD", 70000),
    ], {"import": 12345.67, "export": 700.0}),  # 1234567 x 0.01; 70000 x 0.01
    # Schneider iEM3000 register list: numbers from 1; Float32 A / V / kW, Int64 Wh
    Case("schneider_iem3000", [
        (HR, 3000, F, "ABCD", 15.5), (HR, 3028, F, "ABCD", 231.0), (HR, 3060, F, "ABCD", 10.25),
        (HR, 3204, "int64", "ABCD", 987654321), (HR, 3208, "int64", "ABCD", 123456789),
    ], {"current_l1": 15.5, "voltage_l1": 231.0, "power": 10.25,
        "import": 987654.321,  # 987 654 321 Wh / 1000
        "export": 123456.789}, offset=1),
    # Schneider PM5300 register list: numbers from 1; Float32, INT64 Wh
    Case("schneider_pm5300", [
        (HR, 3000, F, "ABCD", 102.5), (HR, 3028, F, "ABCD", 229.25), (HR, 3060, F, "ABCD", 65.5),
        (HR, 3110, F, "ABCD", 50.0),
        (HR, 3204, "int64", "ABCD", 5000000123),  # above 2^32: all four words carry data
        (HR, 3208, "int64", "ABCD", 0),
    ], {"current_a": 102.5, "voltage_an": 229.25, "power": 65.5, "frequency": 50.0,
        "import": 5000000.123,  # 5 000 000 123 Wh / 1000
        "export": 0.0}, offset=1),
    # a value the meter cannot provide reads as a float NaN: bad quality, not a number
    Case("schneider_pm5300", [(HR, 3110, F, "ABCD", float("nan"))], {"frequency": "bad:sensor_failure"},
         offset=1, partial=True),
    # Siemens PAC3200 Table 3-6 offsets (frame addresses), Float; PAC4200 Table A-9 Double Wh at 801/809
    Case("siemens_pac3200", [
        (HR, 1, F, "ABCD", 230.7), (HR, 13, F, "ABCD", 45.5), (HR, 55, F, "ABCD", 49.95),
        (HR, 65, F, "ABCD", 31250.0), (HR, 69, F, "ABCD", 0.93),
        (HR, 801, "float64", "ABCD", 12345678.9), (HR, 809, "float64", "ABCD", 1000.0),
    ], {"voltage_a": 230.7, "current_a": 45.5, "frequency": 49.95,
        "power": 31.25,  # 31 250 W / 1000
        "power_factor": 0.93,
        "import": 12345.6789,  # 12 345 678.9 Wh / 1000
        "export": 1.0}),
    # Huawei power meter registers: I32 with gains 10 (V), 100 (A), W, 0.01 kWh; power > 0 = feeding the grid
    Case("huawei_sun2000_meter", [
        (HR, 37100, "uint16", "ABCD", 1), (HR, 37101, "int32", "ABCD", 2305), (HR, 37107, "int32", "ABCD", 1234),
        (HR, 37113, "int32", "ABCD", -4200),  # drawing 4.2 kW from the grid
        (HR, 37117, "int16", "ABCD", -985),  # power factor, gain 1000
        (HR, 37118, "int16", "ABCD", 4999),  # grid frequency, gain 100
        (HR, 37119, "int32", "ABCD", 1234567), (HR, 37121, "int32", "ABCD", 7654321),
    ], {"status": 1.0,
        "voltage_a": 230.5,  # 2305 / 10
        "current_a": 12.34,  # 1234 / 100
        "power": 4.2,  # -4200 W fed in = +4.2 kW imported
        "power_factor": -0.985, "frequency": 49.99,
        "export": 12345.67,  # 1 234 567 x 0.01 kWh
        "import": 76543.21}),
]


@pytest.mark.parametrize("case", CASES, ids=[f"{c.profile}{'-partial' if c.partial else ''}" for c in CASES])
def test_meter_profile_reads_its_manuals_layout(case: Case) -> None:
    check(case)
