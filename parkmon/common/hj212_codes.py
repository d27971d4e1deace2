"""HJ 212-2017 code tables (domain.md §3.3, from the standard's tables 5–9 and App. B).

Pollutant codes map to parkmon's metric vocabulary; the HJ/T 212-2005 codes map to their 2017
equivalents, so a packet from an old data logger lands on the same points as a new one.
"""

from __future__ import annotations

# 2017 code -> parkmon base metric (parkmon/common/metrics.py); codes without one are decoded but not mapped
CODE_METRICS: dict[str, str] = {
    "a21026": "cems.so2", "a21002": "cems.nox", "a34013": "cems.particulate", "a19001": "cems.o2",
    "a00000": "cems.flow", "a01012": "cems.temperature",
    "w00000": "ww.flow", "w01018": "ww.cod", "w21003": "ww.nh3n", "w01001": "ww.ph", "w21011": "ww.tp",
    "w21001": "ww.tn",
}
METRIC_CODES: dict[str, str] = {m: c for c, m in CODE_METRICS.items()}

# HJ/T 212-2005 code -> 2017 code (App. B, the old code in brackets)
LEGACY_CODES: dict[str, str] = {
    "01": "a34013", "02": "a21026", "03": "a21002", "04": "a21005", "S01": "a19001", "B02": "a00000",
    "S02": "a01011", "S03": "a01012", "S08": "a01013", "S05": "a01014", "30": "a05001", "10": "a21001",
    "08": "a21024", "05": "a21028", "B01": "w00000", "001": "w01001", "011": "w01018", "060": "w21003",
    "101": "w21011", "065": "w21001", "003": "w01012", "015": "w01020",
}

# the names of the codes the gateway may see, for messages and boards
CODE_NAMES: dict[str, tuple[str, str]] = {
    "a21026": ("二氧化硫", "SO2"), "a21002": ("氮氧化物", "NOx"), "a21003": ("一氧化氮", "NO"),
    "a21004": ("二氧化氮", "NO2"), "a34013": ("烟尘", "Particulate"), "a21005": ("一氧化碳", "CO"),
    "a19001": ("氧含量", "O2"), "a00000": ("废气流量", "Flue-gas flow"), "a01011": ("烟气流速", "Flue-gas velocity"),
    "a01012": ("烟气温度", "Flue-gas temperature"), "a01013": ("烟气压力", "Flue-gas pressure"),
    "a01014": ("烟气湿度", "Flue-gas humidity"), "a05001": ("二氧化碳", "CO2"), "a24088": ("非甲烷总烃", "NMHC"),
    "a21001": ("氨", "NH3"), "a21024": ("氯化氢", "HCl"), "a21028": ("硫化氢", "H2S"),
    "w00000": ("污水流量", "Wastewater flow"), "w01001": ("pH值", "pH"), "w01018": ("化学需氧量", "COD"),
    "w21003": ("氨氮", "NH3-N"), "w21011": ("总磷", "TP"), "w21001": ("总氮", "TN"),
    "w01010": ("水温", "Water temperature"), "w01012": ("悬浮物", "SS"), "w01020": ("总有机碳", "TOC"),
}

# ST system codes (table 5) parkmon speaks
ST_AIR_SOURCE = "31"  # 大气环境污染源 (CEMS)
ST_WATER_SOURCE = "32"  # 地表水体环境污染源 (wastewater)
ST_SYSTEM = "91"  # 系统交互 (replies)
SYSTEM_CODES = {"21", "22", "23", "24", "25", "26", "27", "31", "32", "33", "34", "35", "36", "37", "38", "39",
                "41", "51", "52", "91"}

# CN command codes (table 9)
CN_GET_TIME = "1011"  # 提取现场机时间
CN_REALTIME = "2011"
CN_MINUTE = "2051"
CN_HOUR = "2061"
CN_DAY = "2031"
CN_QN_RETURN = "9011"  # 请求应答
CN_EXE_RETURN = "9012"  # 执行结果
CN_NOTICE_RETURN = "9013"
CN_DATA_ACK = "9014"  # 数据应答
DATA_CNS = {CN_REALTIME: "realtime", CN_MINUTE: "minute", CN_HOUR: "hour", CN_DAY: "day"}
PERIOD_MS = {CN_MINUTE: 60_000, CN_HOUR: 3_600_000, CN_DAY: 86_400_000}

# QnRtn (table 7) and ExeRtn (table 6)
QN_READY, QN_REFUSED, QN_BAD_PW, QN_BAD_MN, QN_BAD_ST, QN_BAD_FLAG, QN_BAD_QN, QN_BAD_CN, QN_BAD_CRC = range(1, 10)
QN_UNKNOWN = 100
EXE_SUCCESS, EXE_FAILED, EXE_BAD_CONDITION, EXE_TIMEOUT, EXE_BUSY, EXE_FAULT = range(1, 7)
EXE_NO_DATA = 100

# value fields of a data item and what they hold; Zs* is the value at the reference O2 ("折算")
VALUE_FIELDS = ("Rtd", "Min", "Avg", "Max", "Cou", "ZsRtd", "ZsMin", "ZsAvg", "ZsMax")
DATA_FLAGS = "NFMSDCTB"
