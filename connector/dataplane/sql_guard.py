"""Decide whether a job's SQL may run, and produce the SQL that actually runs.

This is the first line of defence; the second, which holds even if this one is wrong, is the
sandbox (``sandbox``/``granted``): the engine that runs the query can open one file, holding
only the granted rows and columns. The checker exists to give precise refusals, to name the
columns a query reads (the policy decides on them), and to apply the disclosure rules of
aggregate-only agreements (``disclosure``).

Every query is parsed with sqlglot (DuckDB dialect) and accepted only when it is exactly one
``SELECT`` built from an allow-list of expression types and functions. Names are resolved by
SQL's scoping rules (sqlglot's scope analysis and column qualification against the asset's
columns), never by collecting names across the whole query: each table reference must resolve,
*in its own scope*, to a CTE visible there or to the granted view, and each column to a column
of a source of its scope (or of an enclosing one). An identifier that resolves to nothing is
refused, so no identifier reaches the engine to be read as a file path. What runs is the SQL
*regenerated* from the checked tree, never the text the job sent.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, SqlglotError, TokenError
from sqlglot.optimizer.qualify import qualify
from sqlglot.optimizer.scope import Scope, traverse_scope

from connector.dataplane.disclosure import DisclosureProfile, aggregate_problem, protect
from connector.dataplane.errors import BadQuery, QueryRefused
from connector.dataplane.privacy import PrivacyPlan
from connector.dataplane.privacy_clamp import clamp, keyed

# The name under which a read sees its asset, with only the permitted columns and rows.
GRANTED_VIEW = "data"
# An analytic query written by hand or by a notebook is a few hundred characters.
MAX_QUERY_CHARS = 16_000
# Bounds the work of checking and regenerating one query (and deeply nested input).
MAX_QUERY_NODES = 2_000

_STRUCTURE = (
    "Select", "From", "Where", "Group", "Having", "Order", "Ordered", "Limit", "Offset", "Column",
    "Identifier", "Star", "Literal", "Alias", "TableAlias", "Table", "Join", "Subquery", "CTE", "With",
    "Paren", "Distinct", "Window", "WindowSpec", "Filter", "Tuple", "Null", "Boolean", "DataType",
    "DataTypeParam", "Union", "Intersect", "Except", "Qualify", "Interval", "Var",
)
_OPERATORS = (
    "Neg", "Not", "And", "Or", "Xor", "EQ", "NEQ", "GT", "GTE", "LT", "LTE", "NullSafeEQ", "NullSafeNEQ",
    "Add", "Sub", "Mul", "Div", "IntDiv", "Mod", "Pow", "DPipe", "Like", "ILike", "In", "Between", "Is",
    "Case", "If", "Cast", "TryCast", "Coalesce", "Nullif", "Bracket", "Array", "Slice",
)
_AGGREGATES = (
    "Count", "Sum", "Avg", "Min", "Max", "Stddev", "StddevPop", "StddevSamp", "Variance", "VariancePop",
    "Median", "Quantile", "PercentileCont", "PercentileDisc", "ApproxDistinct", "ApproxQuantile", "CountIf",
    "ArgMax", "ArgMin", "AnyValue", "First", "Last", "Corr", "CovarPop", "CovarSamp", "LogicalAnd",
    "LogicalOr", "Mode",
)
_SCALARS = (
    "Abs", "Round", "Floor", "Ceil", "Sqrt", "Ln", "Log", "Exp", "Sign", "Trunc", "Greatest", "Least",
    "Lower", "Upper", "Initcap", "Length", "Substring", "Trim", "Concat", "ConcatWs", "Replace",
    "StrPosition", "Left", "Right", "Reverse", "Repeat", "Pad", "StartsWith", "EndsWith", "Contains",
    "RegexpLike", "RegexpExtract", "RegexpReplace", "Levenshtein", "Date", "DateTrunc", "TimestampTrunc",
    "Extract", "Year", "Quarter", "Month", "Week", "Day", "DayOfWeek", "Hour", "Minute", "Second",
    "DateDiff", "DateAdd", "TimeToStr", "StrToTime", "TimeToUnix", "CurrentDate", "CurrentTimestamp",
    "RowNumber", "Rank", "DenseRank", "PercentRank", "CumeDist", "Ntile", "Lag", "Lead", "FirstValue",
    "LastValue", "NthValue", "MD5",
)
# DuckDB functions sqlglot has no class for, and that only compute on their arguments.
SAFE_ANONYMOUS_FUNCTIONS = frozenset({
    "date_part", "datepart", "strftime", "epoch", "isodow", "dayofyear", "yearweek", "hash", "ceiling",
    "bit_length", "ascii", "lpad", "rpad", "ltrim", "rtrim", "prefix", "suffix", "sum_no_overflow",
})


def _classes(names: Iterable[str]) -> tuple[type[exp.Expr], ...]:
    found = (getattr(exp, name, None) for name in names)
    return tuple(cls for cls in found if isinstance(cls, type) and issubclass(cls, exp.Expr))


ALLOWED_NODE_TYPES = _classes((*_STRUCTURE, *_OPERATORS, *_AGGREGATES, *_SCALARS))
AGGREGATE_TYPES = _classes(_AGGREGATES)


@dataclass(frozen=True)
class ParsedQuery:
    """A query that passed the structural checks (one SELECT, allowed nodes, granted tables)."""

    tree: exp.Expr
    columns: frozenset[str]  # view columns it names (lower case), resolved by scope
    selects_all: bool  # ``*`` or ``t.*``: it reads every column of the view
    aggregate: bool  # a plain grouped aggregate the disclosure rules allow (the ``aggregate`` action)
    aggregate_problem: str | None = None  # why it is not one (shown when only aggregates may be read)
    resolved: bool = True  # False: a name hides behind ``*`` of a subquery; finalize resolves it


@dataclass(frozen=True)
class GuardedQuery:
    """What will run: the regenerated SQL and its hash (the audit log records the hash)."""

    sql: str
    query_hash: str
    columns: frozenset[str]
    aggregate: bool
    # Set when the query is nothing but a list of distinct granted columns of the view, as they
    # are (no filter, expression, alias, order, limit or DISTINCT): its result is those columns of
    # the granted relation, which the data plane then reads from its Arrow copy, without an engine.
    projection: tuple[str, ...] | None = None


def query_hash(sql: str) -> str:
    return hashlib.sha256(sql.encode("utf-8")).hexdigest()


def _node_name(node: exp.Expr) -> str:
    if isinstance(node, exp.Anonymous):
        return f"function {node.name}()"
    if isinstance(node, exp.Func):
        return f"function {node.sql_name()}()"
    return type(node).__name__.upper()


# Checked queries remembered by text and columns: a job repeats its queries, and parsing and
# resolving names costs more than a small scan. Refusals are not remembered (they raise).
CACHED_QUERIES = 512


# A lone UTF-16 surrogate cannot be encoded (the engine, the audit log and the response all
# encode the query); U+0000 cannot be stored in PostgreSQL text. Neither has a place in SQL.
_UNSTORABLE = re.compile("[\ud800-\udfff\x00]")


def check_query_text(sql: str) -> None:
    """Refuse (400) query text that cannot be encoded or stored, whichever protocol carried it."""
    found = _UNSTORABLE.search(sql)
    if found is not None:
        shown = f"U+{ord(found.group()):04X}"
        raise BadQuery("query_text", f"the query holds {shown} at character {found.start()}, which is not "
                       "accepted in a query (a lone surrogate or NUL)")


def parse_query(sql: str, source_columns: Sequence[str], view_names: Iterable[str] = (GRANTED_VIEW,)
                ) -> ParsedQuery:
    """Parse and check ``sql``; raise :class:`QueryRefused` (403) or :class:`BadQuery` (400).

    ``source_columns`` are the asset's columns: names are resolved against them (what the job
    may see of them is decided later, by the policy and :func:`finalize`).
    """
    return _parse(sql, tuple(source_columns), tuple(view_names))


def guard(sql: str, source_columns: Sequence[str], view_columns: Sequence[str],
          disclosure: DisclosureProfile | None, privacy: PrivacyPlan | None = None) -> GuardedQuery:
    """:func:`parse_query` then :func:`finalize`, remembered for repeated queries."""
    return _guard(sql, tuple(source_columns), tuple(view_columns), disclosure, privacy)


@lru_cache(maxsize=CACHED_QUERIES)
def _guard(sql: str, source_columns: tuple[str, ...], view_columns: tuple[str, ...],
           disclosure: DisclosureProfile | None, privacy: PrivacyPlan | None) -> GuardedQuery:
    return finalize(_parse(sql, source_columns, (GRANTED_VIEW,)), view_columns, disclosure, privacy)


@lru_cache(maxsize=CACHED_QUERIES)
def _parse(sql: str, source_columns: tuple[str, ...], view_names: tuple[str, ...]) -> ParsedQuery:
    if len(sql) > MAX_QUERY_CHARS:
        raise BadQuery("query_too_long", f"the query is longer than {MAX_QUERY_CHARS} characters")
    check_query_text(sql)
    try:
        statements = [s for s in sqlglot.parse(sql, read="duckdb") if s is not None]
    except (ParseError, TokenError) as error:
        reason = f"the query does not parse as DuckDB SQL: {_first_line(error)}"
        raise BadQuery("query_syntax", reason) from None
    except RecursionError:
        raise BadQuery("query_too_deep", "the query is nested too deeply") from None
    if len(statements) != 1:
        raise QueryRefused("one_statement", f"exactly one SELECT statement is allowed, got {len(statements)}")
    tree = statements[0]
    if not isinstance(tree, exp.Query):
        raise QueryRefused("select_only", f"only SELECT is allowed, not {_statement_name(tree)}")
    try:
        nodes = list(tree.walk())
    except RecursionError:
        raise BadQuery("query_too_deep", "the query is nested too deeply") from None
    if len(nodes) > MAX_QUERY_NODES:
        raise BadQuery("query_too_large", f"the query has more than {MAX_QUERY_NODES} syntax nodes")
    # A recursive CTE can run without end over a granted view; a governed read never needs one.
    if any(with_.args.get("recursive") for with_ in tree.find_all(exp.With)):
        raise QueryRefused("recursive_query", "WITH RECURSIVE is not allowed in a query")
    for node in nodes:
        _check_node(node)
    _check_result_growth(nodes)
    granted = {name.lower() for name in view_names}
    try:
        columns, resolved = _resolve(tree, granted, source_columns, expand_stars=False), True
    except BadQuery:  # e.g. ``SELECT a FROM (SELECT * FROM data)``: resolved once stars expand
        columns, resolved = set(), False
    selects_all = any(
        isinstance(node, exp.Star) and not isinstance(node.parent, exp.AggFunc) for node in nodes
    )
    problem = aggregate_problem(tree)
    return ParsedQuery(tree, frozenset(columns), selects_all, problem is None, problem, resolved)


def _resolve(
    tree: exp.Expr, granted: set[str], source_columns: Sequence[str], expand_stars: bool
) -> set[str]:
    """The view's columns the query names, each name resolved in its own scope (``*`` expanded
    to ``source_columns`` when ``expand_stars``)."""
    schema: dict[str, object] = {name: dict.fromkeys(source_columns, "VARCHAR") for name in granted}
    try:
        qualified = qualify(tree.copy(), schema=schema, dialect="duckdb", expand_stars=expand_stars,
                            validate_qualify_columns=True, quote_identifiers=False, identify=False)
        scopes = traverse_scope(qualified)
    except RecursionError:
        raise BadQuery("query_too_deep", "the query is nested too deeply") from None
    except SqlglotError as error:
        reason = f"a name in the query does not resolve: {_first_line(error)}"
        raise BadQuery("unresolved_name", reason) from None
    except Exception as error:  # an analysis failure refuses the query (fail closed)
        raise QueryRefused(
            "unanalysable_query", f"the query could not be analysed: {type(error).__name__}"
        ) from None
    columns: set[str] = set()
    for scope in scopes:
        for source in scope.sources.values():
            if isinstance(source, exp.Table):
                _check_table(source, granted)
        for column in scope.columns:
            found = _source_of(scope, column.table)
            if found is None:
                reason = f"column {column.sql('duckdb')} does not resolve to a source"
                raise BadQuery("unresolved_name", reason)
            if isinstance(found, exp.Table):
                columns.add(column.name.lower())
    return columns


def _source_of(scope: Scope, name: str) -> object | None:
    current: Scope | None = scope
    while current is not None:
        if name in current.sources:
            return current.sources[name]
        current = current.parent
    return None


def _check_table(table: exp.Table, granted: set[str]) -> None:
    """A table that is a real source (not a CTE in scope) must be the granted view itself."""
    if not isinstance(table.this, exp.Identifier):
        raise QueryRefused("table_function", "table functions are not allowed; read the granted view")
    if table.args.get("db") or table.args.get("catalog"):
        raise QueryRefused("qualified_table", f"{table.sql('duckdb')}: only the granted view may be read")
    if table.name.lower() not in granted:
        raise QueryRefused(
            "table_not_granted",
            f"{table.name!r} is not a granted view or a CTE visible where it is used; read {sorted(granted)}",
        )


# Functions whose result can be many times larger than their arguments. DuckDB builds the
# strings of a vector (2,048 rows) outside its ``memory_limit``: ``repeat(note, 10^8)`` over a
# few rows takes gigabytes and the provider's process is killed. Their size arguments must be
# small literals, they may not nest, and a query holds only a few of them.
MAX_REPEAT = 100
MAX_PAD = 1_000
MAX_REPLACEMENT_CHARS = 100
MAX_GROWING_CALLS = 4
_PADS = frozenset({"lpad", "rpad"})


def _growth_problem(node: exp.Expr) -> str | None:
    """Why a size-growing call is not bounded (``None`` when it is, or is no such call)."""

    def small_int(value: object, limit: int) -> bool:
        return (isinstance(value, exp.Literal) and not value.is_string and value.this.isdigit()
                and int(value.this) <= limit)

    if isinstance(node, exp.Repeat):
        if not small_int(node.args.get("times"), MAX_REPEAT):
            return f"repeat() takes a count written as a number of at most {MAX_REPEAT}"
    elif isinstance(node, exp.Pad | exp.Anonymous):
        length = node.args.get("expression") if isinstance(node, exp.Pad) else node.expressions[1:2]
        if not small_int(length[0] if isinstance(length, list) and length else length, MAX_PAD):
            return f"lpad()/rpad() take a length written as a number of at most {MAX_PAD}"
    elif isinstance(node, exp.Replace | exp.RegexpReplace):
        replacement = node.args.get("replacement")
        if replacement is not None and not (
            isinstance(replacement, exp.Literal) and replacement.is_string
            and len(replacement.this) <= MAX_REPLACEMENT_CHARS
        ):
            return f"a replacement is a string literal of at most {MAX_REPLACEMENT_CHARS} characters"
    return None


def _grows(node: exp.Expr) -> bool:
    return isinstance(node, exp.Repeat | exp.Pad | exp.Replace | exp.RegexpReplace) or (
        isinstance(node, exp.Anonymous) and node.name.lower() in _PADS
    )


def _check_result_growth(nodes: Sequence[exp.Expr]) -> None:
    growing = [node for node in nodes if _grows(node)]
    if len(growing) > MAX_GROWING_CALLS:
        raise QueryRefused("result_growth", f"at most {MAX_GROWING_CALLS} calls of repeat, lpad, rpad, "
                           "replace or regexp_replace in a query")
    for node in growing:
        problem = _growth_problem(node)
        if problem is not None:
            raise QueryRefused("result_growth", problem)
        if any(_grows(inner) for inner in node.find_all(exp.Func) if inner is not node):
            raise QueryRefused("result_growth", f"{_node_name(node)} may not take the result of repeat, "
                               "lpad, rpad, replace or regexp_replace as an argument")


def _check_node(node: exp.Expr) -> None:
    in_from = isinstance(node.parent, exp.Table | exp.From | exp.Join)
    if isinstance(node, exp.Func) and in_from:
        raise QueryRefused(
            "table_function", f"table function {_node_name(node)} is not allowed; read the granted view"
        )
    if isinstance(node, exp.Anonymous):
        if node.name.lower() not in SAFE_ANONYMOUS_FUNCTIONS:
            raise QueryRefused("function_not_allowed", f"{_node_name(node)} is not allowed in a query")
        return
    if not isinstance(node, ALLOWED_NODE_TYPES):
        raise QueryRefused("construct_not_allowed", f"{_node_name(node)} is not allowed in a query")
    if isinstance(node, exp.Table) and not isinstance(node.this, exp.Identifier):
        raise QueryRefused("table_function", "table functions are not allowed; read the granted view")
    if isinstance(node, exp.Table) and (node.args.get("db") or node.args.get("catalog")):
        raise QueryRefused("qualified_table", f"{node.sql('duckdb')}: only the granted view may be read")


def finalize(
    parsed: ParsedQuery,
    view_columns: Sequence[str],
    disclosure: DisclosureProfile | None = None,
    privacy: PrivacyPlan | None = None,
) -> GuardedQuery:
    """Check the referenced columns against the view and produce the SQL that runs.

    With a ``disclosure`` profile (an aggregate-only agreement) the query must be an aggregate
    the disclosure rules allow, and what runs is its protected form (``disclosure.protect``);
    under a differential-privacy ``privacy`` plan, its sums over clamped values and its rows
    restricted to the declared keys of its groups instead (the noise is added afterwards).
    """
    granted = {column.lower() for column in view_columns}
    missing = sorted(parsed.columns - granted)
    if missing:
        raise QueryRefused(
            "column_not_granted", f"column(s) {', '.join(missing)} are not granted by the agreement"
        )
    tree = parsed.tree.copy()
    # Every name resolved again, stars expanded to the granted columns: what runs names nothing else.
    named = _resolve(tree, {GRANTED_VIEW}, view_columns, expand_stars=True)
    if not named <= granted:
        raise QueryRefused("column_not_granted", "the query names columns the agreement does not grant")
    if disclosure is not None:
        if parsed.aggregate_problem is not None:
            raise QueryRefused(
                "aggregate_only", f"the agreement allows only grouped aggregates: {parsed.aggregate_problem}"
            )
        assert isinstance(tree, exp.Select)
        # under a budget no rule on true values: the groups are the declared keys, cells are
        # judged after the noise
        tree = keyed(clamp(tree, privacy), privacy) if privacy is not None else protect(tree, disclosure)
    sql = tree.sql(dialect="duckdb")
    projection = _projection(tree, view_columns) if disclosure is None else None
    return GuardedQuery(sql, query_hash(sql), parsed.columns, parsed.aggregate, projection)


_CLAUSES = ("where", "group", "having", "order", "limit", "offset", "distinct", "qualify", "with",
            "joins", "laterals", "windows", "sample", "settings", "into", "locks", "kind", "hint")


def _projection(tree: exp.Expr, view_columns: Sequence[str]) -> tuple[str, ...] | None:
    """The granted columns ``tree`` lists, if it is ``SELECT c1, c2, ... FROM data`` and nothing
    more (see :attr:`GuardedQuery.projection`); ``None`` for anything else."""
    if not isinstance(tree, exp.Select) or any(tree.args.get(name) for name in _CLAUSES):
        return None
    source = tree.args.get("from_") or tree.args.get("from")
    table = source.this if isinstance(source, exp.From) else None
    if not (isinstance(table, exp.Table) and table.name == GRANTED_VIEW):
        return None
    # the view as it is, at most under another name: no column list renaming its columns
    # (``data AS d(age, id)`` swaps them), no ``ONLY``, sample, version or any other modifier
    table_alias = table.args.get("alias")
    if any(value for key, value in table.args.items() if key not in ("this", "alias")) or (
            table_alias is not None and (not isinstance(table_alias, exp.TableAlias)
                                         or any(v for k, v in table_alias.args.items() if k != "this"))):
        return None
    alias = table.alias_or_name
    if len(tree.expressions) == 1 and isinstance(tree.expressions[0], exp.Star):
        if any(tree.expressions[0].args.values()):  # * EXCLUDE / REPLACE / RENAME ...
            return None
        return tuple(view_columns) or None  # the view's columns, in its order
    by_name = {name: name for name in view_columns}
    found: list[str] = []
    for projection in tree.expressions:
        if not (isinstance(projection, exp.Column) and isinstance(projection.this, exp.Identifier)):
            return None
        if projection.table not in ("", alias) or projection.args.get("db") or projection.args.get("catalog"):
            return None
        name = by_name.get(projection.name)
        if name is None or name in found:
            return None
        found.append(name)
    return tuple(found) if found else None


def select_all_sql(view_columns: Sequence[str]) -> str:
    """The query behind ``GET /data/{transfer}``: every granted column of the view (the same
    text for every read of a grant, so generated once per column list)."""
    return _select_all(tuple(view_columns))


@functools.lru_cache(maxsize=512)
def _select_all(view_columns: tuple[str, ...]) -> str:
    columns = [exp.column(name, quoted=True) for name in view_columns]
    return exp.select(*columns).from_(GRANTED_VIEW).sql(dialect="duckdb")


def _statement_name(tree: exp.Expr) -> str:
    if isinstance(tree, exp.Command):
        return str(tree.this).upper()
    return type(tree).__name__.upper()


def _first_line(error: Exception) -> str:
    return str(error).splitlines()[0][:200] if str(error) else type(error).__name__
