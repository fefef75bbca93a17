"""Decide whether a job's SQL may run, and produce the SQL that actually runs.

DuckDB's sandbox alone is not enough: ``allowed_directories`` must include the asset's folder so
the granted view can read its file, and then a raw ``read_parquet('<that file>')`` would bypass
the view's column and row restrictions. So every query is parsed with sqlglot (DuckDB dialect)
and accepted only when it is exactly one ``SELECT`` built from an allow-list of expression types
and functions, reading only the granted view names (and its own CTEs). What runs is the SQL
*regenerated* from the checked tree, never the text the job sent.

For aggregate-only agreements the query must be a single grouped aggregate over the view, and
``HAVING count(*) >= k`` is added: groups smaller than ``k`` are suppressed (left out of the
result entirely, not masked), so no returned row describes fewer than ``k`` records.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from connector.dataplane.errors import BadQuery, QueryRefused

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
    columns: frozenset[str]  # column names it references (lower case), aliases excluded
    selects_all: bool  # ``*`` or ``t.*``: it reads every column of the view
    aggregate: bool  # a single grouped aggregate over the view (the ``aggregate`` action)


@dataclass(frozen=True)
class GuardedQuery:
    """What will run: the regenerated SQL and its hash (the audit log records the hash)."""

    sql: str
    query_hash: str
    columns: frozenset[str]
    aggregate: bool


def query_hash(sql: str) -> str:
    return hashlib.sha256(sql.encode("utf-8")).hexdigest()


def _node_name(node: exp.Expr) -> str:
    if isinstance(node, exp.Anonymous):
        return f"function {node.name}()"
    if isinstance(node, exp.Func):
        return f"function {node.sql_name()}()"
    return type(node).__name__.upper()


def parse_query(sql: str, view_names: Iterable[str] = (GRANTED_VIEW,)) -> ParsedQuery:
    """Parse and check ``sql``; raise :class:`QueryRefused` (403) or :class:`BadQuery` (400)."""
    if len(sql) > MAX_QUERY_CHARS:
        raise BadQuery("query_too_long", f"the query is longer than {MAX_QUERY_CHARS} characters")
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
    nodes = list(tree.walk())
    if len(nodes) > MAX_QUERY_NODES:
        raise BadQuery("query_too_large", f"the query has more than {MAX_QUERY_NODES} syntax nodes")
    granted = {name.lower() for name in view_names}
    # A recursive CTE can run without end over a granted view; a governed read never needs one.
    if any(with_.args.get("recursive") for with_ in tree.find_all(exp.With)):
        raise QueryRefused("recursive_query", "WITH RECURSIVE is not allowed in a query")
    ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    aliases = {node.alias.lower() for node in nodes if isinstance(node, exp.Alias) and node.alias}
    for table_alias in (node for node in nodes if isinstance(node, exp.TableAlias)):
        aliases.update(column.name.lower() for column in table_alias.columns)
    for node in nodes:
        _check_node(node, granted, ctes)
    columns: set[str] = set()
    selects_all = False
    for node in nodes:
        if isinstance(node, exp.Column):
            if isinstance(node.this, exp.Star):
                selects_all = True
            elif node.name.lower() not in aliases or node.table:
                columns.add(node.name.lower())
        elif isinstance(node, exp.Star) and not isinstance(node.parent, exp.AggFunc | exp.Column):
            selects_all = True
    return ParsedQuery(tree, frozenset(columns), selects_all, aggregate_problem(tree) is None)


def _check_node(node: exp.Expr, granted: set[str], ctes: set[str]) -> None:
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
    if isinstance(node, exp.Table):
        if not isinstance(node.this, exp.Identifier):
            raise QueryRefused("table_function", "table functions are not allowed; read the granted view")
        if node.args.get("db") or node.args.get("catalog"):
            raise QueryRefused("qualified_table", f"{node.sql('duckdb')}: only the granted view may be read")
        name = node.name.lower()
        if name not in granted and name not in ctes:
            raise QueryRefused(
                "table_not_granted", f"{node.name!r} is not a granted view; read {sorted(granted)}"
            )


def aggregate_problem(tree: exp.Expr) -> str | None:
    """Why ``tree`` is not a plain grouped aggregate over one view, or ``None`` if it is."""
    if not isinstance(tree, exp.Select):
        return "it must be a single SELECT (no UNION, INTERSECT or EXCEPT)"
    for kind, label in ((exp.With, "WITH"), (exp.Join, "JOIN"), (exp.Subquery, "a subquery"),
                        (exp.Window, "a window function"), (exp.Qualify, "QUALIFY")):
        if tree.find(kind) is not None:
            return f"it may not use {label}"
    if tree.args.get("distinct"):
        return "it may not use SELECT DISTINCT"
    group = tree.args.get("group")
    group_columns: set[str] = set()
    if group is not None:
        for item in group.expressions:
            if not isinstance(item, exp.Column) or isinstance(item.this, exp.Star):
                return "GROUP BY may only list columns"
            group_columns.add(item.name.lower())
    saw_aggregate = False
    for projection in tree.expressions:
        inner = projection.this if isinstance(projection, exp.Alias) else projection
        if isinstance(inner, exp.Column) and not isinstance(inner.this, exp.Star):
            if inner.name.lower() not in group_columns:
                return f"column {inner.name!r} is neither grouped nor aggregated"
            continue
        if isinstance(inner, AGGREGATE_TYPES):
            if any(isinstance(node, exp.AggFunc) for node in inner.walk() if node is not inner):
                return "aggregates may not be nested"
            saw_aggregate = True
            continue
        return f"{inner.sql('duckdb')} is neither a grouped column nor an aggregate"
    if not saw_aggregate:
        return "it computes no aggregate"
    return None


def finalize(
    parsed: ParsedQuery,
    view_columns: Sequence[str],
    aggregate_only: bool = False,
    min_group_size: int | None = None,
) -> GuardedQuery:
    """Check the referenced columns against the view and produce the SQL that runs."""
    granted = {column.lower() for column in view_columns}
    missing = sorted(parsed.columns - granted)
    if missing:
        raise QueryRefused(
            "column_not_granted", f"column(s) {', '.join(missing)} are not granted by the agreement"
        )
    tree = parsed.tree.copy()
    if aggregate_only:
        problem = aggregate_problem(tree)
        if problem is not None:
            raise QueryRefused("aggregate_only", f"the agreement allows only grouped aggregates: {problem}")
        threshold = max(1, min_group_size or 1)
        assert isinstance(tree, exp.Select)
        tree = tree.having(
            exp.GTE(this=exp.Count(this=exp.Star()), expression=exp.Literal.number(threshold)), copy=False
        )
    sql = tree.sql(dialect="duckdb")
    return GuardedQuery(sql, query_hash(sql), parsed.columns, parsed.aggregate)


def select_all_sql(view_columns: Sequence[str]) -> str:
    """The query behind ``GET /data/{transfer}``: every granted column of the view."""
    columns = [exp.column(name, quoted=True) for name in view_columns]
    return exp.select(*columns).from_(GRANTED_VIEW).sql(dialect="duckdb")


def _statement_name(tree: exp.Expr) -> str:
    if isinstance(tree, exp.Command):
        return str(tree.this).upper()
    return type(tree).__name__.upper()


def _first_line(error: Exception) -> str:
    return str(error).splitlines()[0][:200] if str(error) else type(error).__name__
