"""绿电绿证 — the green-power register: green power bought by contract (绿电交易) and green certificates
(绿证, GEC) bought, sold or cancelled (核销), by the park or one of its enterprises. The new-energy share
reads it for every period (docs/indicators/green-power.md has the counting rules and their sources; the
counting itself is analytics.green_claims).

Rules kept at write time, so a certificate is never on the register twice: one certificate id is bought
at most once, cancelled at most once (by the holder that bought it, if bought here), and never both sold
and bought or cancelled here — the national system trades a certificate once (国能发新能规〔2024〕67号).
Nothing is deleted: a wrong entry is voided (audited), which takes it out of every figure.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Connection, select

from ingest.store.base import Store
from ingest.store.records.base import (
    Conflict,
    Forbidden,
    NotFound,
    RecordError,
    audit,
    enterprise_id,
    enterprise_keys,
    park_id,
    transaction,
)
from ingest.store.records.green_register import (
    CERT_ID,
    Certificates,
    Contract,
    contract_doc,
    green_certificates,
    green_contracts,
    register,
)
from ingest.store.records.spec import Key, Op, RecordType, RowId, Upload
from parkmon.common.clock import now_ms
from parkmon.common.metrics import System


# ---- writes --------------------------------------------------------------------------------------------------
def _holder(conn: Connection, park: str, named: str | None, caller_enterprise: str | None) -> int | None:
    """The holder's enterprise row id (None: the park): an enterprise's token holds for itself only."""
    if caller_enterprise is not None:
        if named not in (None, caller_enterprise):
            raise Forbidden(f"enterprise {caller_enterprise!r} records green power only for itself: drop "
                            f"\"enterprise\" or send \"enterprise\": \"{caller_enterprise}\"")
        named = caller_enterprise
    return None if named is None else enterprise_id(conn, park, named)


def _mine(row_enterprise: int | None, holder: int | None, caller_enterprise: str | None, what: str) -> None:
    if caller_enterprise is not None and row_enterprise != holder:
        raise Forbidden(f"{what} is not enterprise {caller_enterprise!r}'s: an enterprise changes only its own")


def put_contract(store: Store, park: str, key: Key, c: Contract, actor: str,
                 caller_enterprise: str | None = None) -> dict[str, Any]:
    """Record or correct a contract (its number is the path's); audited with before and after."""
    with transaction(store) as conn:
        return _put_contract(conn, park, key, c, actor, caller_enterprise, "update")


def _put_contract(conn: Connection, park: str, key: str, c: Contract, actor: str, caller_enterprise: str | None,
                  action: str) -> dict[str, Any]:
    gc = green_contracts
    pid = park_id(conn, park)
    ents = enterprise_keys(conn, pid)
    holder = _holder(conn, park, c.enterprise, caller_enterprise)
    start, end = c.bounds_ms()
    row = conn.execute(select(gc).where(gc.c.park_id == pid, gc.c.key == key)).first()
    values = {"seller": c.seller, "project": c.project, "start_ms": start, "end_ms": end,
              "contracted_kwh": c.contracted_kwh, "settled_kwh": c.settled_kwh, "updated_ms": now_ms(),
              "voided_ms": None}
    if row is None:
        conn.execute(gc.insert().values(park_id=pid, enterprise_id=holder, key=key, changed_from_ms=start, **values))
        before = None
    else:
        _mine(row.enterprise_id, holder, caller_enterprise, f"contract {key}")
        if row.enterprise_id != holder:
            raise Conflict(f"contract {key} is held by {ents.get(row.enterprise_id, 'the park')}; a contract keeps "
                           "its holder: void it and record the right one under another number")
        before = contract_doc(row, ents)
        conn.execute(gc.update().where(gc.c.id == row.id).values(changed_from_ms=min(start, row.start_ms), **values))
    after = contract_doc(conn.execute(select(gc).where(gc.c.park_id == pid, gc.c.key == key)).one(), ents)
    audit(conn, actor=actor, action=action, entity="green_contracts", key=key, park=park, before=before, after=after)
    return after


def _overlaps(conn: Connection, pid: int, prefix: str, lo: int, hi: int) -> list[Any]:
    gc = green_certificates
    out = []
    for r in conn.execute(select(gc).where(gc.c.park_id == pid, gc.c.voided_ms.is_(None))):
        a, b = CERT_ID.match(r.first_id), CERT_ID.match(r.last_id)
        if a and b and a.group(1) == prefix and int(a.group(2)) <= hi and lo <= int(b.group(2)):
            out.append(r)
    return out


def _check_trade_once(cert: Certificates, holder: int | None, clash: list[Any]) -> None:
    """One certificate: bought once, cancelled once by its buyer, never sold here and also bought or used here."""
    for r in clash:
        what = f"ids {cert.first_id}..{cert.last_id or cert.first_id} overlap batch {r.id} ({r.action} " \
               f"{r.first_id}..{r.last_id})"
        if r.action == cert.action:
            raise Conflict(f"{what}: a certificate is {cert.action} once; void batch {r.id} first if it is wrong")
        if "sold" in (r.action, cert.action):
            raise Conflict(f"{what}: a certificate is traded once (国能发新能规〔2024〕67号); one sold here cannot "
                           "also be bought or cancelled here")
        if r.enterprise_id != holder:
            raise Conflict(f"{what}, held by another holder: only the buyer cancels a certificate")


def add_certificates(store: Store, park: str, cert: Certificates, actor: str,
                     caller_enterprise: str | None = None) -> dict[str, Any]:
    """Record a batch of certificates bought, sold or cancelled; audited."""
    with transaction(store) as conn:
        return _add_certificates(conn, park, cert, actor, caller_enterprise, "create")


def _add_certificates(conn: Connection, park: str, cert: Certificates, actor: str, caller_enterprise: str | None,
                      action: str) -> dict[str, Any]:
    gc, gk = green_certificates, green_contracts
    pid = park_id(conn, park)
    holder = _holder(conn, park, cert.enterprise, caller_enterprise)
    prefix, lo, hi = cert.ids()
    _check_trade_once(cert, holder, _overlaps(conn, pid, prefix, lo, hi))
    contract_id = None
    if cert.contract:
        c = conn.execute(select(gk).where(gk.c.park_id == pid, gk.c.key == cert.contract,
                                          gk.c.voided_ms.is_(None))).first()
        if c is None:
            raise NotFound(f"contract {cert.contract!r} is not on park {park!r}'s register: record it first "
                           f"(PUT /api/v1/parks/{park}/green-power/contracts/{cert.contract})")
        if c.enterprise_id != holder:
            raise RecordError(f"contract {cert.contract} has another holder than these certificates: 证电合一 "
                              "certificates go to the contract's buyer")
        contract_id = c.id
    start, end = cert.bounds_ms()
    doc = cert.model_dump(mode="json") | {"last_id": cert.last_id or cert.first_id, "count": hi - lo + 1,
                                         "enterprise": caller_enterprise or cert.enterprise}
    bid = conn.execute(gc.insert().values(
        park_id=pid, enterprise_id=holder, first_id=cert.first_id, last_id=doc["last_id"], count=doc["count"],
        project=cert.project, start_ms=start, end_ms=end, action=cert.action, contract_id=contract_id,
        acted_on=doc["acted_on"], updated_ms=now_ms()).returning(gc.c.id)).scalar_one()
    audit(conn, actor=actor, action=action, entity="green_certificates", key=str(bid), park=park, after=doc)
    return {"id": bid, **doc}


def void_contract(store: Store, park: str, key: Key, actor: str,
                  caller_enterprise: str | None = None) -> dict[str, Any]:
    """Take a contract off every figure (kept, marked void, audited); its bundled certificates first."""
    gc, gcert = green_contracts, green_certificates
    with transaction(store) as conn:
        pid = park_id(conn, park)
        row = conn.execute(select(gc).where(gc.c.park_id == pid, gc.c.key == key, gc.c.voided_ms.is_(None))).first()
        if row is None:
            raise NotFound(f"contract {key!r} is not on park {park!r}'s register (or is void already)")
        _mine(row.enterprise_id, _holder(conn, park, None, caller_enterprise), caller_enterprise, f"contract {key}")
        bundled = conn.execute(select(gcert.c.id).where(gcert.c.contract_id == row.id,
                                                        gcert.c.voided_ms.is_(None))).scalars().all()
        if bundled:
            raise Conflict(f"contract {key} has bundled certificate batches {', '.join(map(str, bundled))}: void "
                           "them first")
        at = now_ms()
        conn.execute(gc.update().where(gc.c.id == row.id).values(voided_ms=at, updated_ms=at,
                                                                 changed_from_ms=row.start_ms))
        audit(conn, actor=actor, action="void", entity="green_contracts", key=key, park=park,
              before={"voided_ms": None}, after={"voided_ms": at})
    return {"contract": key, "voided_ms": at}


def void_certificates(store: Store, park: str, batch_id: RowId, actor: str,
                      caller_enterprise: str | None = None) -> dict[str, Any]:
    gc = green_certificates
    with transaction(store) as conn:
        pid = park_id(conn, park)
        row = conn.execute(select(gc).where(gc.c.park_id == pid, gc.c.id == batch_id,
                                            gc.c.voided_ms.is_(None))).first()
        if row is None:
            raise NotFound(f"certificate batch {batch_id} is not on park {park!r}'s register (or is void already)")
        _mine(row.enterprise_id, _holder(conn, park, None, caller_enterprise), caller_enterprise,
              f"certificate batch {batch_id}")
        at = now_ms()
        conn.execute(gc.update().where(gc.c.id == row.id).values(voided_ms=at, updated_ms=at))
        audit(conn, actor=actor, action="void", entity="green_certificates", key=str(batch_id), park=park,
              before={"voided_ms": None}, after={"voided_ms": at})
    return {"id": batch_id, "voided_ms": at}




# ---- import -------------------------------------------------------------------------------------------------
KINDS = {"contract": "contract", "合同": "contract", "绿电": "contract", "绿电合同": "contract",
         "certificates": "certificates", "certificate": "certificates", "绿证": "certificates"}
HEADER_ALIASES = {"类型": "kind", "企业": "enterprise", "合同编号": "contract", "售电方": "seller", "项目": "project",
                  "电站": "project", "开始": "period_start", "结束": "period_end", "合同电量": "contracted_kwh",
                  "结算电量": "settled_kwh", "起始编号": "first_id", "终止编号": "last_id", "数量": "count",
                  "生产开始": "production_start", "生产结束": "production_end", "操作": "action",
                  "日期": "acted_on"}
ACTIONS = {"购买": "bought", "出售": "sold", "核销": "cancelled"}


def read_rows(name: str, content: bytes) -> list[dict[str, Any]]:
    """Rows of a CSV (UTF-8, BOM or not) or .xlsx file, keyed by our column names (Chinese headers too)."""
    suffix = Path(name).suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        from openpyxl import load_workbook  # only imports need it

        ws = load_workbook(io.BytesIO(content), read_only=True, data_only=True).active
        if ws is None:
            raise RecordError(f"{name}: the workbook has no sheet")
        cells = [list(r) for r in ws.iter_rows(values_only=True)]
    elif suffix in (".csv", ".txt"):
        try:
            cells = [list(r) for r in csv.reader(io.StringIO(content.decode("utf-8-sig")))]
        except UnicodeDecodeError:
            raise RecordError(f"{name}: not UTF-8 text; save the sheet as CSV UTF-8 or send the .xlsx") from None
    else:
        raise RecordError(f"{name}: give a .csv or .xlsx file (got {suffix or 'no extension'})")
    if not cells:
        raise RecordError(f"{name}: the file is empty")
    header = [HEADER_ALIASES.get(str(h).strip(), str(h).strip()) if h is not None else "" for h in cells[0]]
    if "kind" not in header:
        raise RecordError(f"{name}: the header needs a kind column (类型: contract 合同 or certificates 绿证), then "
                          "the fields of each (docs/indicators/green-power.md lists them)")
    return [{h: c for h, c in zip(header, row, strict=False) if h and c not in (None, "")}
            for row in cells[1:] if any(c not in (None, "") for c in row)]


def _import_row(conn: Connection, park: str, row: dict[str, Any], actor: str, caller_enterprise: str | None,
                source: str) -> None:
    row = {k: (v.strip() if isinstance(v, str) else v) for k, v in row.items()}
    kind = KINDS.get(str(row.pop("kind", "")).lower())
    if kind == "contract":
        key = str(row.pop("contract", ""))
        if not key:
            raise RecordError("a contract row needs its number (contract / 合同编号)")
        _put_contract(conn, park, key, Contract.model_validate(row), actor, caller_enterprise, f"import:{source}")
    elif kind == "certificates":
        if "action" in row:
            row["action"] = ACTIONS.get(str(row["action"]), row["action"])
        _add_certificates(conn, park, Certificates.model_validate(row), actor, caller_enterprise, f"import:{source}")
    else:
        raise RecordError(f"kind {row.get('kind')!r} is neither contract (合同) nor certificates (绿证)")


def import_file(store: Store, park: str, file: Upload, actor: str,
                caller_enterprise: str | None = None) -> dict[str, Any]:
    """Contracts and certificate batches from one CSV or Excel file, in its order (a contract before the
    certificates bundled with it), all or nothing: a refusal lists every bad line with why."""
    name = Path(file.filename or "upload.csv").name
    rows = read_rows(name, file.content)
    errors: list[dict[str, Any]] = []
    with transaction(store) as conn:
        park_id(conn, park)  # an unknown park refuses the file, not each line
        for n, row in enumerate(rows, start=2):  # line 1 is the header
            try:
                _import_row(conn, park, row, actor, caller_enterprise, name)
            except ValidationError as exc:
                errors.append({"line": n, "reason": "; ".join(
                    f"{'.'.join(str(x) for x in e['loc']) or 'row'}: {e['msg']}" for e in exc.errors())})
            except RecordError as exc:
                errors.append({"line": n, "reason": str(exc)})
        if errors:  # raised inside the transaction: nothing of the file stays
            raise RecordError(f"{name}: nothing imported, {len(errors)} bad line(s) of {len(rows)}", detail={
                "file": name, "lines": len(rows), "nothing_imported": True, "errors": errors})
    return {"file": name, "lines": len(rows)}


def panel(store: Store, park: str, now: int) -> dict[str, Any]:
    """The energy system's panel: the register's size."""
    reg = register(store, park)
    return {"green_contracts": len(reg["contracts"]), "green_certificate_batches": len(reg["certificates"])}


_W = ("operator", "enterprise")
RECORD_TYPE = RecordType(
    "green_power", System.ENERGY, "green power 绿电绿证", tables=(green_contracts, green_certificates), panel=panel,
    ops=(
        Op("PUT", "/parks/{park}/green-power/contracts/{key}",
           "Record or correct a green-power contract (绿电交易合同)", put_contract, enterprise="query", writers=_W),
        Op("DELETE", "/parks/{park}/green-power/contracts/{key}", "Void a contract (作废)", void_contract,
           enterprise="query", writers=_W),
        Op("POST", "/parks/{park}/green-power/certificates", "Record green certificates bought, sold or cancelled "
           "(绿证购买/出售/核销)", add_certificates, enterprise="query", writers=_W),
        Op("DELETE", "/parks/{park}/green-power/certificates/{batch_id}", "Void a certificate batch (作废)",
           void_certificates, enterprise="query", writers=_W),
        Op("GET", "/parks/{park}/green-power", "The green-power register (绿电绿证台账)", register,
           enterprise="query"),
        Op("POST", "/parks/{park}/green-power/import", "Import contracts and certificates from CSV or Excel (批量导入)",
           import_file, enterprise="query", writers=_W,
           description="All or nothing: any bad line refuses the file, and every bad line is listed with why."),
    ))
