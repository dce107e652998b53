"""Load a policy file (TOML, stdlib ``tomllib``) and validate it into a :class:`Policy`.

Every problem raises :class:`PolicyFileError` naming the file, the key path inside it
(``categories.license.rows[1].outcome``, arrays indexed from 0) and what is wrong.

The format (one file per policy under ``config/policies/``) is documented key by key in
``docs/policy-format.md``; in short::

    id, version, effective_date, name, source
    [sections.N] title, text; [sections.N.rows.KEY] label, text      (cited "N", "N/KEY")
    [facts.NAME] type = bool | money | time, label                   (the policy's own facts)
    [reasons.NAME] label                                             (the policy's own reasons)
    [fees] deduct = none | proportional, cite
    [bundle] rule = whole_order_only, cite, because
    [statutory_overlay] enabled, days, countries, cite, because
    [chargeback] while_open, when_lost, cite
    [refund] license_action, cite, confirm_within_business_days
    [early_fraud_warning] action = review | refund | ignore, cite, because
    [[rows]]                                        rows common to every category, read first
    [categories.X] label, billing, cite, rows_from, early_fraud_warning, [[categories.X.rows]]
    a row: id, when (rules.py, windows.py), outcome, amount = full | pro_rated | amount_minus
           | percent | tiered, minus, percent, tiers, waive_fee, cite, because

Rows are compiled once here (conditions into predicates, citations into clauses, the common
rows merged into each category's list), so the evaluator only walks tuples.
"""
from __future__ import annotations

import dataclasses
import hashlib
import re
import tomllib
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from pathlib import Path
from typing import Any, Mapping, Optional

from .errors import PolicyFileError
from .model import (BundleRule, Category, ChargebackRule, Clause, FactDef, FeeRule, FraudWarningRule,
                    Policy, RefundRule, Row, Section, SectionRow, StatutoryOverlay, Tier, dedupe_clauses,
                    standard_facts)
from .rules import compile_when, window_check
from .vocab import (AMOUNT_RULES, BILLINGS, BUNDLE_RULES, CHARGEBACK_WHEN_LOST, CHARGEBACK_WHILE_OPEN,
                    FACT_KINDS, FEE, FEE_TREATMENTS, FRAUD_WARNING_ACTIONS, FRAUD_WARNING_REASON,
                    LICENSE_ACTIONS, OUTCOMES, PURCHASES, REASON_LABELS)
from .windows import AFTER_KEYS, BUILTIN_CLOCKS, BUILTIN_MEASURES, WITHIN_KEYS, Window

_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_COUNTRY_RE = re.compile(r"^[A-Z]{2}$")

TOP_KEYS = ("id", "version", "effective_date", "name", "source", "sections", "categories",
            "rows", "fees", "bundle", "statutory_overlay", "chargeback", "refund",
            "early_fraud_warning", "facts", "reasons")
ROW_KEYS = ("id", "when", "outcome", "amount", "minus", "percent", "tiers", "waive_fee", "cite",
            "because")
WHEN_KEYS = ("reason", "category", "billing", "purchase", "duplicate_charge", "facts",
             "any_fact", *WITHIN_KEYS, *AFTER_KEYS, "clock", "measured_at", "known", "unknown")
TIER_KEYS = (*WITHIN_KEYS, "percent", "because")
DEFAULT_FRAUD_BECAUSE = {
    "review": "the card issuer reported this payment as possibly fraudulent, so our team reviews it before anything else happens",
    "refund": "the card issuer reported this payment as possibly fraudulent, so we refund it in full at once",
    "ignore": "the card issuer reported this payment as possibly fraudulent, which this policy leaves to the dispute process",
}

DEFAULT_BECAUSE = {
    "approved": "the refund policy allows a refund in this case",
    "denied": "the refund policy does not allow a refund in this case",
    "review": "the refund policy leaves this case to our discretion",
}
DEFAULT_BUNDLE_BECAUSE = "items bought together under one offer are refunded only in full"
DEFAULT_OVERLAY_BECAUSE = "statutory consumer rights may apply to a recent purchase"

_TYPE_NAMES = {str: "a string", int: "an integer", bool: "a boolean (true or false)",
               list: "an array", dict: "a table", date: "a date"}


def _type_of(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, date):
        return "a date"
    return type(value).__name__


def load_policy(path: str | Path) -> Policy:
    """Read and validate one policy file."""
    name = str(path)
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise PolicyFileError(name, "", "file not found") from None
    except OSError as err:
        raise PolicyFileError(name, "", f"cannot read the file: {err.strerror or err}") from None
    return parse_policy(data, name)


def parse_policy(data: bytes, path: str = "<policy>") -> Policy:
    """Validate policy file bytes; ``path`` names the file in error messages."""
    digest = hashlib.sha256(data).hexdigest()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise PolicyFileError(path, "", f"not UTF-8 text ({err.reason} at byte {err.start})") from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise PolicyFileError(path, "", f"not valid TOML: {err}") from None
    return _Builder(path, digest).build(doc)


class _Table:
    """A TOML table being read: typed access by key, with the key path for errors."""

    def __init__(self, builder: "_Builder", key: str, data: Mapping[str, Any]) -> None:
        self.b = builder
        self.key = key
        self.data = data
        self.seen: set[str] = set()

    def path(self, name: str) -> str:
        return f"{self.key}.{name}" if self.key else name

    def fail(self, name: str, problem: str) -> PolicyFileError:
        return self.b.fail(self.path(name), problem)

    def has(self, name: str) -> bool:
        return name in self.data

    def get(self, name: str, kind: type, required: bool = False, default: Any = None) -> Any:
        self.seen.add(name)
        if name not in self.data:
            if required:
                raise self.fail(name, f"missing required key (expected {_TYPE_NAMES[kind]})")
            return default
        value = self.data[name]
        ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
        if kind is date and isinstance(value, datetime):
            ok = False
        if kind is date and isinstance(value, str):
            try:
                return date.fromisoformat(value)
            except ValueError:
                ok = False
        if not ok:
            raise self.fail(name, f"expected {_TYPE_NAMES[kind]}, got {_type_of(value)} {value!r}")
        return value

    def text(self, name: str, required: bool = False, default: Optional[str] = None) -> Optional[str]:
        value = self.get(name, str, required, default)
        if value is not None and not value.strip():
            raise self.fail(name, "must not be empty")
        return value

    def choice(self, name: str, choices: tuple[str, ...], required: bool = False,
               default: Optional[str] = None) -> Optional[str]:
        value = self.get(name, str, required, default)
        if value is not None and value not in choices:
            raise self.fail(name, f"{value!r} is not one of {', '.join(choices)}")
        return value

    def strings(self, name: str, choices: Optional[tuple[str, ...]] = None, what: str = "value",
                required: bool = False, allow_empty: bool = False) -> Optional[list[str]]:
        value = self.get(name, list, required)
        if value is None:
            return None
        if not value and not allow_empty:
            raise self.fail(name, "must not be empty")
        seen: set[str] = set()
        for i, item in enumerate(value):
            if not isinstance(item, str):
                raise self.b.fail(f"{self.path(name)}[{i}]",
                                  f"expected a string, got {_type_of(item)} {item!r}")
            if choices is not None and item not in choices:
                raise self.b.fail(f"{self.path(name)}[{i}]",
                                  f"unknown {what} {item!r} (one of {', '.join(choices)})")
            if item in seen:
                raise self.b.fail(f"{self.path(name)}[{i}]", f"{item!r} is listed twice")
            seen.add(item)
        return value

    def table(self, name: str, required: bool = False) -> Optional["_Table"]:
        value = self.get(name, dict, required)
        return None if value is None else _Table(self.b, self.path(name), value)

    def tables(self, name: str) -> list["_Table"]:
        value = self.get(name, list, False, [])
        out = []
        for i, item in enumerate(value):
            key = f"{self.path(name)}[{i}]"
            if not isinstance(item, dict):
                raise self.b.fail(key, f"expected a table, got {_type_of(item)} {item!r}")
            out.append(_Table(self.b, key, item))
        return out

    def finish(self, allowed: tuple[str, ...]) -> None:
        for name in self.data:
            if name not in allowed:
                raise self.fail(name, f"unknown key (allowed here: {', '.join(allowed)})")


@dataclasses.dataclass
class _RawRow:
    row: Row
    categories: Optional[frozenset[str]]   # a common row's category condition
    cite_key: str


class _Builder:
    def __init__(self, path: str, digest: str) -> None:
        self.path = path
        self.digest = digest
        self.sections: dict[str, Section] = {}
        self.category_names: set[str] = set()
        self.row_ids: dict[str, str] = {}
        self.facts: dict[str, FactDef] = standard_facts()
        self.reasons: dict[str, str] = dict(REASON_LABELS)

    def names(self, kind: str) -> tuple[str, ...]:
        return tuple(n for n, f in self.facts.items() if f.type == kind)

    def fail(self, key: str, problem: str) -> PolicyFileError:
        return PolicyFileError(self.path, key, problem)

    # -- the document ---------------------------------------------------------------------
    def build(self, doc: Mapping[str, Any]) -> Policy:
        top = _Table(self, "", doc)
        top.finish(TOP_KEYS)
        policy_id = top.text("id", required=True)
        if not _ID_RE.match(policy_id):
            raise top.fail("id", f"{policy_id!r} is not a policy id (lower-case letters, digits, '-', '_')")
        version = top.data.get("version")
        if isinstance(version, date):
            version = version.isoformat()
            top.seen.add("version")
        else:
            version = top.text("version", required=True)
        effective = top.get("effective_date", date, required=True)
        name = top.text("name", default=policy_id)
        top.text("source")

        self._sections(top.table("sections", required=True))
        self._facts(top.table("facts"))
        self._reasons(top.table("reasons"))
        fees = self._fees(top.table("fees"))
        cats_table = top.table("categories", required=True)
        if not cats_table.data:
            raise self.fail("categories", "must define at least one category")
        for cname in cats_table.data:
            if not _NAME_RE.match(cname):
                raise cats_table.fail(cname, "a category name is lower-case letters, digits and '_'")
            self.category_names.add(cname)
        common = [self._row(t, "common", i, common=True) for i, t in enumerate(top.tables("rows"))]
        categories = self._categories(cats_table, common, fees)
        bundle = self._bundle(top.table("bundle"))
        overlay = self._overlay(top.table("statutory_overlay"))
        chargeback = self._chargeback(top.table("chargeback"))
        refund = self._refund(top.table("refund"))
        fraud = self._fraud_warning(top.table("early_fraud_warning"))
        return Policy(id=policy_id, version=version, effective_date=effective, name=name,
                      path=self.path, hash=self.digest, sections=self.sections,
                      categories=categories, fees=fees, bundle=bundle, overlay=overlay,
                      chargeback=chargeback, refund=refund, fraud_warning=fraud,
                      facts=self.facts, reasons=self.reasons, source=top.data.get("source"))

    # -- sections and citations -----------------------------------------------------------
    def _sections(self, t: _Table) -> None:
        if not t.data:
            raise self.fail("sections", "must define at least one section")
        for number in t.data:
            s = t.table(number)
            s.finish(("title", "text", "rows"))
            title = s.text("title", required=True)
            text = s.text("text", required=True)
            rows: dict[str, SectionRow] = {}
            rt = s.table("rows")
            if rt is not None:
                for rkey in rt.data:
                    r = rt.table(rkey)
                    r.finish(("label", "text"))
                    rows[rkey] = SectionRow(rkey, r.text("label", required=True),
                                            r.text("text", required=True))
            self.sections[number] = Section(number, title, text, rows)

    def _cite(self, t: _Table, name: str = "cite", required: bool = False) -> tuple[Clause, ...]:
        refs = t.strings(name, what="section", required=required, allow_empty=not required) or []
        out = []
        for i, ref in enumerate(refs):
            key = f"{t.path(name)}[{i}]"
            number, _, row = ref.partition("/")
            section = self.sections.get(number)
            if section is None:
                raise self.fail(key, f"cites section {number!r}, which [sections] does not define"
                                     f" (defined: {', '.join(self.sections)})")
            if not row:
                out.append(Clause(number, section.title, section.text))
                continue
            srow = section.rows.get(row)
            if srow is None:
                raise self.fail(key, f"cites row {row!r} of section {number!r}, which "
                                     f"[sections.{number}.rows] does not define")
            out.append(Clause(number, f"{section.title}: {srow.label}", srow.text, srow.label))
        return tuple(out)

    # -- the merchant's own facts and reasons ---------------------------------------------
    def _facts(self, t: Optional[_Table]) -> None:
        if t is None:
            return
        for fname in t.data:
            if not _NAME_RE.match(fname):
                raise t.fail(fname, "a fact name is lower-case letters, digits and '_'")
            if fname in self.facts:
                raise t.fail(fname, f"{fname!r} is a standard fact (spec/policies.md): use it as it is")
            if fname in (FEE, *BUILTIN_CLOCKS, *BUILTIN_MEASURES):
                raise t.fail(fname, f"{fname!r} is a name of payment data, not a fact")
            f = t.table(fname)
            f.finish(("type", "label"))
            kind = f.choice("type", FACT_KINDS, required=True)
            label = f.text("label", required=True).strip().rstrip(".")
            self.facts[fname] = FactDef(fname, kind, label, declared=True)

    def _reasons(self, t: Optional[_Table]) -> None:
        if t is None:
            return
        for rname in t.data:
            if not _NAME_RE.match(rname):
                raise t.fail(rname, "a reason is lower-case letters, digits and '_'")
            if rname in self.reasons or rname == FRAUD_WARNING_REASON:
                raise t.fail(rname, f"{rname!r} is a standard reason (spec/policies.md)")
            r = t.table(rname)
            r.finish(("label",))
            self.reasons[rname] = r.text("label", required=True).strip().rstrip(".")

    # -- rows ----------------------------------------------------------------------------
    def _row(self, t: _Table, owner: str, index: int, common: bool) -> _RawRow:
        t.finish(ROW_KEYS)
        row_id = t.text("id") or f"{owner}#{index + 1}"
        if row_id in self.row_ids:
            raise t.fail("id", f"duplicate row id {row_id!r} (also at {self.row_ids[row_id]})")
        self.row_ids[row_id] = t.key
        when_t = t.table("when")
        when: dict[str, Any] = {}
        categories = None
        if when_t is not None:
            when, categories = self._when(when_t, tiered=t.has("tiers"))
        outcome = t.choice("outcome", OUTCOMES, required=True)
        amount = t.choice("amount", AMOUNT_RULES)
        if outcome == "approved" and amount is None:
            raise t.fail("amount", f"an approved row needs an amount rule ({', '.join(AMOUNT_RULES)})")
        if outcome != "approved" and amount is not None:
            raise t.fail("amount", f"only an approved row has an amount rule (this one is {outcome})")
        money = (*self.names("money"),)
        minus = t.strings("minus", money, what="money fact")
        if amount == "amount_minus" and not minus:
            raise t.fail("minus", "amount_minus needs the money facts to subtract")
        if minus and amount != "amount_minus":
            raise t.fail("minus", "only an amount_minus row subtracts money facts")
        percent = None
        if t.has("percent"):
            if amount != "percent":
                raise t.fail("percent", 'only an amount = "percent" row has a percent (tiers give their own)')
            percent = self._percent(t, "percent", None)
        elif amount == "percent":
            raise t.fail("percent", "amount = \"percent\" needs percent = N (0 < N <= 100)")
        tiers: tuple[Tier, ...] = ()
        if t.has("tiers"):
            if amount != "tiered":
                raise t.fail("tiers", 'only an amount = "tiered" row has tiers')
            tiers = self._tiers(t, when)
        elif amount == "tiered":
            raise t.fail("tiers", 'amount = "tiered" needs tiers = [{ within_months = 3, percent = 75 }, ...]')
        waive_fee = t.get("waive_fee", bool, default=False)
        if waive_fee and outcome != "approved":
            raise t.fail("waive_fee", "only an approved row can waive the processing fee")
        cite = self._cite(t)
        because = t.text("because", default=DEFAULT_BECAUSE[outcome]).strip().rstrip(".")
        compiled = compile_when(when)
        checks = compiled.checks
        if tiers:
            checks = (*checks, _any_tier(tiers))
        display = {k: v for k, v in when.items() if not k.startswith("_")}
        row = Row(id=row_id, key=t.key, when=display, checks=checks, outcome=outcome,
                  amount=amount, minus=tuple(minus or ()), waive_fee=waive_fee,
                  unknown=tuple(when.get("unknown", ())), because=because, cite=cite,
                  plain=compiled.plain, within=compiled.within, after=compiled.after,
                  percent=percent, tiers=tiers)
        return _RawRow(row, categories, t.key)

    def _when(self, w: _Table, tiered: bool = False) -> tuple[dict[str, Any], Optional[frozenset[str]]]:
        w.finish(WHEN_KEYS)
        out: dict[str, Any] = {}
        categories = None
        bools = self.names("bool")
        times = self.names("time")
        if w.has("reason"):
            out["reason"] = w.strings("reason", tuple(self.reasons), what="reason")
        if w.has("category"):
            names = tuple(sorted(self.category_names))
            categories = frozenset(w.strings("category", names, what="category"))
            out["category"] = sorted(categories)
        if w.has("billing"):
            out["billing"] = w.strings("billing", BILLINGS, what="billing")
        if w.has("purchase"):
            out["purchase"] = w.choice("purchase", PURCHASES)
        if w.has("duplicate_charge"):
            out["duplicate_charge"] = w.get("duplicate_charge", bool)
        if w.has("facts"):
            ft = w.table("facts")
            if not ft.data:
                raise w.fail("facts", "must name at least one fact")
            facts = {}
            for fname in ft.data:
                fact = self.facts.get(fname)
                if fact is None:
                    raise ft.fail(fname, f"unknown fact (boolean facts: {', '.join(bools)}; "
                                         "declare your own under [facts])")
                if fact.type != "bool":
                    hint = "use known/unknown" if fact.type == "money" else "use clock or measured_at"
                    raise ft.fail(fname, f"{fname} is a {fact.type} fact, not a boolean one: {hint}")
                facts[fname] = ft.get(fname, bool)
            out["facts"] = facts
        if w.has("any_fact"):
            out["any_fact"] = w.strings("any_fact", bools, what="boolean fact")
        clock = w.choice("clock", (*BUILTIN_CLOCKS, *times)) if w.has("clock") else "paid_at"
        measured = (w.choice("measured_at", (*BUILTIN_MEASURES, *times)) if w.has("measured_at")
                    else "requested_at")
        if clock == measured:
            raise w.fail("measured_at", f"a window cannot measure {clock!r} from itself")
        windows: dict[str, list[Window]] = {"_within": [], "_after": []}
        for keys, slot in ((WITHIN_KEYS, "_within"), (AFTER_KEYS, "_after")):
            given = [k for k in keys if w.has(k)]
            if len(given) > 1:
                raise w.fail(given[1], f"one {slot[1:]}_* window per row (also {given[0]})")
            for key in given:
                n = w.get(key, int)
                if n < 0:
                    raise w.fail(key, "must not be negative")
                out[key] = n
                windows[slot].append(Window(key.split("_", 1)[1], n, clock, measured))
        has_window = bool(windows["_within"] or windows["_after"]) or tiered
        for key, value in (("clock", clock), ("measured_at", measured)):
            if w.has(key):
                out[key] = value
                if not has_window:
                    raise w.fail(key, "only applies with a within_* or after_* window (or tiers)")
        if windows["_within"]:
            out["_within"] = windows["_within"]
        if windows["_after"]:
            out["_after"] = windows["_after"]
        amounts = (*self.names("money"), FEE, *times)
        for key in ("known", "unknown"):
            if w.has(key):
                out[key] = w.strings(key, amounts, what="amount or time fact")
        return out, categories

    def _percent(self, t: _Table, key: str, where: Optional[str]) -> Tier:
        value = t.data.get(key)
        t.seen.add(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise t.fail(key, f"expected a number of percent (0 < N <= 100), got {_type_of(value)} {value!r}")
        try:
            exact = Fraction(Decimal(str(value)))
        except (InvalidOperation, ValueError):
            raise t.fail(key, f"{value!r} is not a number") from None
        if not 0 < exact <= 100:
            raise t.fail(key, f"{value!r} is not a percentage above 0 and at most 100")
        text = str(value)
        if text.endswith(".0"):
            text = text[:-2]
        share = exact / 100
        return Tier(Window("days", 0), _never, share.numerator, share.denominator, text)

    def _tiers(self, t: _Table, when: Mapping[str, Any]) -> tuple[Tier, ...]:
        tables = t.tables("tiers")
        if not tables:
            raise t.fail("tiers", "must list at least one tier")
        base = Window("days", 0, when.get("clock", "paid_at"), when.get("measured_at", "requested_at"))
        out = []
        for tt in tables:
            tt.finish(TIER_KEYS)
            given = [k for k in WITHIN_KEYS if tt.has(k)]
            if len(given) != 1:
                raise tt.fail("within_days", "a tier has exactly one within_* window "
                                             f"({', '.join(WITHIN_KEYS)})")
            n = tt.get(given[0], int)
            if n < 0:
                raise tt.fail(given[0], "must not be negative")
            window = dataclasses.replace(base, unit=given[0].split("_", 1)[1], n=n)
            if not tt.has("percent"):
                raise tt.fail("percent", "missing required key (expected a number of percent)")
            share = self._percent(tt, "percent", None)
            because = tt.text("because")
            out.append(dataclasses.replace(share, window=window, check=window_check(window, True),
                                           because=because.strip().rstrip(".") if because else None))
        return tuple(out)

    # -- categories ----------------------------------------------------------------------
    def _categories(self, t: _Table, common: list[_RawRow], fees: FeeRule) -> dict[str, Category]:
        specs = {}
        own_rows: dict[str, list[_RawRow]] = {}
        for cname in t.data:
            c = t.table(cname)
            c.finish(("label", "billing", "cite", "rows", "rows_from", "early_fraud_warning"))
            efw = c.choice("early_fraud_warning", FRAUD_WARNING_ACTIONS)
            label = c.text("label", default=cname)
            billing = c.strings("billing", BILLINGS, what="billing")
            billing_set = frozenset(billing) if billing else frozenset(BILLINGS)
            cite = self._cite(c)
            rows_from = c.text("rows_from")
            rows = [self._row(r, cname, i, common=False) for i, r in enumerate(c.tables("rows"))]
            if rows_from is not None and rows:
                raise c.fail("rows_from", "give either rows or rows_from, not both")
            specs[cname] = (c, label, billing_set, cite, rows_from, efw)
            own_rows[cname] = rows
        categories = {}
        for cname, (c, label, billing_set, cite, rows_from, efw) in specs.items():
            rows = own_rows[cname]
            if rows_from is not None:
                if rows_from not in specs:
                    raise c.fail("rows_from", f"unknown category {rows_from!r}")
                if specs[rows_from][4] is not None or not own_rows[rows_from]:
                    raise c.fail("rows_from", f"category {rows_from!r} has no rows of its own")
                rows = own_rows[rows_from]
            effective = [r for r in [*common, *rows]
                         if r.categories is None or cname in r.categories]
            if not effective:
                raise c.fail("rows", "the category has no rows (and no common row applies to it)")
            built: list[Row] = []
            guards: list[Row] = []
            catch_all: Optional[Row] = None
            for raw in effective:
                if catch_all is not None:
                    raise self.fail(raw.row.key, f"unreachable for category {cname!r}: row "
                                                 f"{catch_all.id!r} before it has no conditions")
                row_cite = dedupe_clauses(raw.row.cite + cite)
                if not row_cite:
                    raise self.fail(raw.row.key, f"cites no section for category {cname!r} (give "
                                                 "cite on the row or on the category)")
                row = dataclasses.replace(raw.row, cite=row_cite, guards=tuple(guards),
                                          cite_fee=dedupe_clauses(row_cite + fees.cite))
                simple = (len(row.within) == 1 and not row.guards and not row.tiers
                          and row.within[0].unit == "days" and row.within[0].clock == "paid_at")
                row = dataclasses.replace(
                    row, has_deadline=bool(row.within or row.guards or row.tiers),
                    deadline_delta=timedelta(days=row.within[0].n) if simple else None)
                built.append(row)
                if row.after and not row.within:
                    guards.append(row)
                if not raw.row.checks:
                    catch_all = raw.row
            default_billing = "one_time" if "one_time" in billing_set else (
                next(iter(billing_set)) if len(billing_set) == 1 else None)
            categories[cname] = Category(cname, label, billing_set, tuple(built), cite,
                                         default_billing, efw)
        return categories

    # -- policy-wide rules ---------------------------------------------------------------
    def _fees(self, t: Optional[_Table]) -> FeeRule:
        if t is None:
            return FeeRule("none")
        t.finish(("deduct", "cite"))
        treatment = t.choice("deduct", FEE_TREATMENTS, required=True)
        cite = self._cite(t, required=treatment == "proportional")
        return FeeRule(treatment, cite)

    def _bundle(self, t: Optional[_Table]) -> Optional[BundleRule]:
        if t is None:
            return None
        t.finish(("rule", "cite", "because"))
        rule = t.choice("rule", BUNDLE_RULES, required=True)
        cite = self._cite(t, required=True)
        because = t.text("because", default=DEFAULT_BUNDLE_BECAUSE).strip().rstrip(".")
        return BundleRule(rule, cite, because)

    def _overlay(self, t: Optional[_Table]) -> StatutoryOverlay:
        if t is None:
            return StatutoryOverlay(False, 14, frozenset(), (), DEFAULT_OVERLAY_BECAUSE)
        t.finish(("enabled", "days", "countries", "cite", "because"))
        enabled = t.get("enabled", bool, required=True)
        days = t.get("days", int, default=14)
        if days <= 0:
            raise t.fail("days", "must be positive")
        countries = t.strings("countries", required=enabled) or []
        for i, code in enumerate(countries):
            if not _COUNTRY_RE.match(code):
                raise self.fail(f"{t.path('countries')}[{i}]",
                                f"{code!r} is not an upper-case two-letter country code")
        cite = self._cite(t, required=enabled)
        because = t.text("because", default=DEFAULT_OVERLAY_BECAUSE).strip().rstrip(".")
        return StatutoryOverlay(enabled, days, frozenset(countries), cite, because)

    def _chargeback(self, t: Optional[_Table]) -> ChargebackRule:
        if t is None:
            return ChargebackRule("suspend_order", "revoke")
        t.finish(("while_open", "when_lost", "cite"))
        rule = ChargebackRule(
            t.choice("while_open", CHARGEBACK_WHILE_OPEN, required=True),
            t.choice("when_lost", CHARGEBACK_WHEN_LOST, required=True),
            self._cite(t))
        return rule

    def _fraud_warning(self, t: Optional[_Table]) -> FraudWarningRule:
        if t is None:
            return FraudWarningRule("review", (), DEFAULT_FRAUD_BECAUSE["review"])
        t.finish(("action", "cite", "because"))
        action = t.choice("action", FRAUD_WARNING_ACTIONS, default="review")
        cite = self._cite(t)
        because = t.text("because", default=DEFAULT_FRAUD_BECAUSE[action]).strip().rstrip(".")
        return FraudWarningRule(action, cite, because)

    def _refund(self, t: Optional[_Table]) -> RefundRule:
        if t is None:
            return RefundRule("revoke")
        t.finish(("license_action", "cite", "confirm_within_business_days"))
        action = t.choice("license_action", LICENSE_ACTIONS, required=True)
        cite = self._cite(t)
        days = t.get("confirm_within_business_days", int)
        if days is not None and days <= 0:
            raise t.fail("confirm_within_business_days", "must be positive")
        return RefundRule(action, cite, days)



def _never(ctx: Any) -> bool:
    return False


def _any_tier(tiers: tuple[Tier, ...]):
    """The condition a tiered row adds: some tier's window holds (the first one is kept on
    the context for the amount); past the last tier the row does not apply."""
    def check(ctx: Any) -> bool:
        for tier in tiers:
            if tier.check(ctx):
                ctx.tier = tier
                return True
        return False
    return check
