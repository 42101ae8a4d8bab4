"""The entity-linking index kept in the graph (nlu/linking/graph_index.py): every map of the linker's
`LineIndex` stored as small keyed nodes, so a worker keeps only bounded caches and reads what a
message needs, and every worker (and host) shares one index that an import or an edit updates.

One label per kind of entry, each keyed by `k` (`<map code>:<key>`, unique, indexed), its value in `v`
and, for lists, their length in `n`:

- `LinkLine` lines by id (`v`: the line as `pack_line` packs it, base64); a line taken out is kept
  with `dead` set (a reader that still holds an older posting finds it) and deleted later (`PURGE`).
- `LinkKey` exact keys, model-line keys, glued forms (skus) and titles (line ids).
- `LinkWord` / `LinkTerm` postings (line ids) of name words made of letters (the vocabulary a typo
  is matched against, read whole) and of every other token (model numbers, sizes: looked up).
- `LinkValue` attribute values (their display form, in how many lines, the lines every product of
  which has it), and per attribute key and value, in how many lines.
- `LinkStat` per attribute key: in how many lines it varies, is shared, and with how many values.
- `LinkProduct` per sku: its line and the fingerprint indexed.
- `(:LinkMeta {key: 'link'})`: `version` (bumped by every write), `next_lid`, `lines`, `products`,
  and what catalog it reflects (`catalog`, `stamp`, `watermark`).

Every write is one `WRITE` (atomic on both backends) that only applies when `version` is still the
one its writer read: two workers that both saw the catalog move compute the same change, one writes
it, the other finds the version moved and reads again. A change too large for one write leaves
`complete` false until its last chunk: a reader that finds it so waits while `version` moves, and
rebuilds the index from nothing when it stops moving (a writer that died half-way).
"""

from __future__ import annotations

from kg.queries import q

LABELS = ("LinkLine", "LinkKey", "LinkWord", "LinkTerm", "LinkValue", "LinkStat", "LinkProduct")

META = q(
    "link_index.meta",
    """
    OPTIONAL MATCH (m:LinkMeta {key: 'link'})
    RETURN m.version AS version, m.next_lid AS next_lid, m.lines AS lines, m.products AS products,
           m.catalog AS catalog, m.stamp AS stamp, m.watermark AS watermark, m.complete AS complete
    """,
    description="Where the linking index in the graph stands: its version, counts, and the catalog it reflects.",
)

START = q(
    "link_index.start",
    """
    MERGE (m:LinkMeta {key: 'link'})
    ON CREATE SET m.version = 0, m.next_lid = 0, m.lines = 0, m.products = 0, m.complete = false
    RETURN m.version AS version
    """,
    read_only=False,
    description="Create the index's meta node when there is none (a first build).",
)

# An entry travels as a list [key, value, length], not as a map: the FalkorDB client writes a parameter
# holding a map through its slow recursive encoder (kg/backends/falkordb.py `_params_header`); and not as
# parallel lists indexed by position, which FalkorDB copies for every element (quadratic).
_SET = ("FOREACH (r IN $set_{label} | MERGE (e:{label} {{k: r[0]}}) "
        "SET e.v = r[1], e.n = r[2], e.dead = null)")
_GONE = "FOREACH (k IN $gone_{label} | MERGE (e:{label} {{k: k}}) DELETE e)"

_HEAD = """
    MATCH (m:LinkMeta {key: 'link'})
    WHERE m.version = $version
    SET m.version = $version + 1, m.next_lid = $next_lid, m.lines = m.lines + $lines,
        m.products = m.products + $products,
        m.catalog = CASE WHEN $last THEN $catalog ELSE m.catalog END,
        m.stamp = CASE WHEN $last THEN $stamp ELSE m.stamp END,
        m.watermark = CASE WHEN $last THEN $watermark ELSE m.watermark END,
        m.complete = $last
    FOREACH (k IN $dead | MERGE (e:LinkLine {k: k}) SET e.dead = $now)
"""

WRITE = q(
    "link_index.write",
    _HEAD + "\n".join(_SET.format(label=lb) + "\n" + (_GONE.format(label=lb) if lb != "LinkLine" else "")
                       for lb in LABELS) + """
    RETURN m.version AS version
    """,
    read_only=False,
    description="One change to the index (entries set, entries removed, lines marked dead), applied only when "
                "the index is still at $version; returns the new version, or nothing when another writer came first.",
)

CREATE = q(
    "link_index.create",
    _HEAD + "\n".join(f"FOREACH (r IN $set_{lb} | CREATE (:{lb} {{k: r[0], v: r[1], n: r[2]}}))" for lb in LABELS)
    + """
    RETURN m.version AS version
    """,
    read_only=False,
    description="Entries of a first build written into an empty index (no key to look up first), on $version as "
                "`WRITE`.",
)

_POSTINGS = ("LinkWord", "LinkTerm")

READ = q(
    "link_index.read",
    "\nUNION ALL\n".join(
        f"UNWIND ${lb} AS key MATCH (e:{lb} {{k: key}}) "
        + ("RETURN e.k AS k, CASE WHEN e.n > $cap THEN null ELSE e.v END AS v, e.n AS n" if lb in _POSTINGS
           else "RETURN e.k AS k, e.v AS v, e.n AS n")
        for lb in LABELS),
    description="Entries by key, one list of keys per label; postings longer than $cap come back as their "
                "length alone (a common word's).",
)

WORDS = q(
    "link_index.words",
    "MATCH (e:LinkWord) RETURN substring(e.k, 2) AS word",
    description="The name words made of letters (what a shopper's typo is matched against).",
)

VALUES = q(
    "link_index.values",
    "MATCH (e:LinkValue) WHERE e.k STARTS WITH 'v:' RETURN substring(e.k, 2) AS value, e.v AS display",
    description="Every attribute value (tokens joined by spaces) with its display form.",
)

NAMING_VALUES = q(
    "link_index.naming_values",
    "MATCH (e:LinkValue) WHERE e.k STARTS WITH 'cv:' AND e.n <= $max_lines "
    "RETURN substring(e.k, 3) AS value, e.v AS lines",
    description="Attribute values every product of at most $max_lines lines has, with those lines.",
)

TITLES = q(
    "link_index.titles",
    "MATCH (e:LinkKey) WHERE e.k STARTS WITH 'ti:' RETURN substring(e.k, 3) AS title",
    description="Every line title (LINKING_VECTORS=memory embeds them in each worker).",
)

STATS = q(
    "link_index.stats",
    "MATCH (e:LinkStat) RETURN e.k AS k, e.v AS v",
    description="Per attribute key: in how many lines it varies, is shared, and takes how many values.",
)

INDEXED_SKUS = q(
    "link_index.indexed_skus",
    """
    MATCH (e:LinkProduct)
    WHERE e.k > $after AND e.k < 'f;'
    RETURN e.k AS k
    ORDER BY k
    LIMIT $limit
    """,
    description="A page of the skus the index holds (`f:<sku>` after $after), to find products deleted since.",
)

PURGE = q(
    "link_index.purge",
    """
    MATCH (e:LinkLine)
    WHERE e.dead IS NOT NULL AND e.dead < $before
    WITH e LIMIT $limit
    DELETE e
    RETURN count(*) AS purged
    """,
    read_only=False,
    description="Delete up to $limit lines taken out before $before (kept meanwhile for readers of older postings).",
)

CLEAR = {
    label: q(
        f"link_index.clear_{label.lower()}",
        f"MATCH (e:{label}) WITH e LIMIT $limit DELETE e RETURN count(*) AS deleted",
        read_only=False,
        description=f"Delete up to $limit {label} nodes (a rebuild from nothing; run until 0).",
    )
    for label in (*LABELS, "LinkMeta")
}
