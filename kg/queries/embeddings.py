"""Product-name vectors kept in the graph, beside the full-text index, for entity linking
(nlu/linking): computed once per name (at import, on a single-product edit, or by `kgqa graph
embed` for a catalog imported before), searched through the graph engine's vector index, so no
worker computes or holds the catalog's vectors.

A vector belongs to a *text*, not to a product: `(:NameVector {text, embedding})`, and a product
names the text its vector was computed from in `p._vt`. The text is the product's name without its
variant parts, with its brand ("Nordic Audio Aurora X2 Wireless Headphones" for every colour of
it; the composition root gives the function, nlu/linking/index.py `name_vector_text`), so a model
line's variants share one vector: about a third as many to compute and search as products in the
sample catalog, and variant words are the lexical linker's business anyway.

`p._vh` records the fingerprint the text was worked out from: the encoder's vector space (`$space`,
a short hash of the encoder's files and precision), the content fingerprint `_h` and the name; a
product whose fingerprint moved, or whose vector another encoder made, is stale. The graph's vectors
are all of one space, named on `(:Meta {key: 'name_vectors'})`: a fill with another encoder first
deletes them (`PURGE`) and builds the index again, so vectors of two encoders are never compared. Making it current works out its text again and embeds it only
when no vector of that text exists, so a price or stock change (a new `_h`) embeds nothing and an
unchanged re-import finds nothing stale. A vector node is only ever created, or deleted once no
product names its text: FalkorDB 4.16 re-inserts a node into its vector index whenever any of its
properties is set, and a deleted or re-inserted entry keeps its place among the nearest neighbours,
so searches would come back with fewer rows as products change. The searches still ask for more
rows than they need and join back to the products, and `kg/embeddings.py` rebuilds the index when
enough vectors have been removed since it was built.

FalkorDB's vector search returns the cosine *distance*, Neo4j's a similarity in [0, 1]; the search
turns both into the cosine.
"""

from __future__ import annotations

from kg.queries import product_scan, q

VECTOR_INDEX_NAME = "name_vector_embedding"  # Neo4j names its indexes; FalkorDB keys them by label
VECTOR_LABEL = "NameVector"  # the label of the name vectors (index listings name it)

_FINGERPRINT = "$space + '|' + coalesce(p._h, '') + '|' + p.name"
_CURRENT = f"p._vh = {_FINGERPRINT}"

STALE = product_scan(
    "embeddings.stale",
    """
    RETURN p.sku AS sku, {cursor} AS cursor
    """,
    where=f"p.name IS NOT NULL AND (p._vh IS NULL OR NOT {_CURRENT})",
    description="A page of products whose vector text was worked out from other content than they have now "
                "(or never): a scan (kg/scan.py).",
)

STALE_OF = q(
    "embeddings.stale_of",
    f"""
    UNWIND $skus AS wanted
    MATCH (p:Product {{sku: wanted}})
    WHERE p.name IS NOT NULL AND (p._vh IS NULL OR NOT {_CURRENT})
    RETURN p.sku AS sku
    """,
    description="Which of the products $skus are stale (a single-product edit: no catalog-wide scan).",
)

STALE_COUNT = q(
    "embeddings.stale_count",
    f"""
    MATCH (p:Product)
    WHERE p.name IS NOT NULL AND (p._vh IS NULL OR NOT {_CURRENT})
    RETURN count(p) AS stale
    """,
    description="How many products still need their vector text worked out (readiness and the migration's progress).",
)

SPACE = q(
    "embeddings.space",
    """
    OPTIONAL MATCH (m:Meta {key: 'name_vectors'})
    OPTIONAL MATCH (v:NameVector)
    WITH m, v LIMIT 1
    RETURN m.space AS space, v IS NOT NULL AS any_vector
    """,
    description="The encoder space the graph's name vectors were made in, and whether there are any.",
)

SPACE_SET = q(
    "embeddings.space_set",
    """
    MERGE (m:Meta {key: 'name_vectors'})
    SET m.space = $space
    RETURN m.space AS space
    """,
    read_only=False,
    description="Name the encoder space of the graph's name vectors (once they are all of it).",
)

PURGE = q(
    "embeddings.purge",
    """
    MATCH (v:NameVector)
    WITH v LIMIT $limit
    DELETE v
    RETURN count(*) AS deleted
    """,
    read_only=False,
    description="Delete up to $limit name vectors (another encoder's: they are made again).",
)

PRODUCTS = q(
    "embeddings.products",
    f"""
    UNWIND $skus AS wanted
    MATCH (p:Product {{sku: wanted}})
    OPTIONAL MATCH (p)-[:MADE_BY]->(b:Brand)
    RETURN p.sku AS sku, p.name AS name, b.name AS brand, p.attributes AS attributes, {_FINGERPRINT} AS vh,
           p._vt AS old_text
    """,
    description="What a product's vector text is worked out from, its fingerprint now and the text it had.",
)

HAVE = q(
    "embeddings.have",
    """
    UNWIND $texts AS wanted
    MATCH (v:NameVector {text: wanted})
    RETURN v.text AS text
    """,
    description="Which of $texts already have a vector.",
)

WRITE = q(
    "embeddings.write",
    """
    UNWIND $rows AS r
    MERGE (v:NameVector {text: r[0]})
    ON CREATE SET v.embedding = vecf32(r[1])
    RETURN count(*) AS written
    """,
    read_only=False,
    variants={"neo4j": """
    UNWIND $rows AS r
    MERGE (v:NameVector {text: r[0]})
    WITH v, r WHERE v.embedding IS NULL
    CALL db.create.setNodeVectorProperty(v, 'embedding', r[1])
    RETURN count(*) AS written
    """},
    description="Store [text, vector] rows as vector nodes; a text that has one already (another process "
                "wrote it meanwhile) keeps it.",
)

ASSIGN = q(
    "embeddings.assign",
    f"""
    UNWIND $rows AS r
    MATCH (p:Product {{sku: r[0]}})
    WHERE {_FINGERPRINT} = r[2]
    SET p._vt = r[1], p._vh = r[2]
    RETURN count(*) AS assigned
    """,
    read_only=False,
    description="Point products at the text of their vector ([sku, text, fingerprint] rows); one that changed "
                "since it was read is skipped and stays stale.",
)

_ORPHANS = """
    OPTIONAL MATCH (p:Product {_vt: v.text})
    WITH v, count(p) AS users WHERE users = 0
    DELETE v
    RETURN count(*) AS deleted
    """

ORPHANS_DELETE = q(
    "embeddings.delete_orphans",
    "MATCH (v:NameVector)" + _ORPHANS,
    read_only=False,
    description="Vectors of texts no product names any more (and those of the per-product layout before).",
)

ORPHANS_OF = q(
    "embeddings.delete_orphans_of",
    """
    UNWIND $texts AS wanted
    MATCH (v:NameVector {text: wanted})""" + _ORPHANS,
    read_only=False,
    description="Of the vectors of $texts (the texts edited products had), those no product names any more.",
)

CHURN = q(
    "embeddings.churn",
    """
    MERGE (m:Meta {key: 'name_vectors'})
    SET m.replaced = CASE WHEN $reset THEN 0 ELSE coalesce(m.replaced, 0) + $replaced END
    RETURN m.replaced AS replaced
    """,
    read_only=False,
    description="Vectors removed since the vector index was last built ($reset: it was just built).",
)

COUNT = q(
    "embeddings.count",
    "MATCH (v:NameVector) RETURN count(v) AS vectors",
    description="How many name vectors the graph holds.",
)

SIMILAR = q(
    "embeddings.similar_products",
    """
    CALL db.idx.vector.queryNodes('NameVector', 'embedding', $fetch, vecf32($vector)) YIELD node, score
    MATCH (p:Product {_vt: node.text})
    WITH p.sku AS sku, max(1.0 - score) AS cosine
    RETURN sku, cosine ORDER BY cosine DESC, sku LIMIT $k
    """,
    variants={"neo4j": f"""
    CALL db.index.vector.queryNodes('{VECTOR_INDEX_NAME}', $fetch, $vector) YIELD node, score
    MATCH (p:Product {{_vt: node.text}})
    WITH p.sku AS sku, max(2.0 * score - 1.0) AS cosine
    RETURN sku, cosine ORDER BY cosine DESC, sku LIMIT $k
    """},
    description="The $k products whose name vectors are nearest $vector (cosine), through the vector index; "
                "$fetch (more than $k) absorbs entries the index keeps for removed vectors. A product changed since "
                "its text was worked out is found by the text it had until the next fill.",
)

VECTOR_INDEXES = q(
    "embeddings.vector_indexes",
    """
    CALL db.indexes() YIELD label, types, status
    WITH label, types, status WHERE label = 'NameVector' AND 'VECTOR' IN coalesce(types.embedding, [])
    RETURN count(*) AS indexes, collect(status)[0] AS status
    """,
    variants={"neo4j": f"""
    SHOW VECTOR INDEXES YIELD name, state WHERE name = '{VECTOR_INDEX_NAME}'
    RETURN count(*) AS indexes, CASE WHEN collect(state)[0] = 'ONLINE' THEN 'OPERATIONAL' ELSE collect(state)[0] END
           AS status
    """},
    description="Whether the name vector index exists (1) or not (0), and its state (OPERATIONAL once built).",
)


def vector_index_statements(backend: str, dimension: int) -> list[str]:
    """The DDL creating the name vector index (cosine) for `dimension`-long vectors, and the indexes of
    texts (`text_index_statements`)."""
    dim = int(dimension)
    if backend == "neo4j":
        return [*text_index_statements(backend),
                f"CREATE VECTOR INDEX {VECTOR_INDEX_NAME} IF NOT EXISTS FOR (v:NameVector) ON (v.embedding) "
                f"OPTIONS {{indexConfig: {{`vector.dimensions`: {dim}, `vector.similarity_function`: 'cosine'}}}}"]
    return [*text_index_statements(backend),
            f"CREATE VECTOR INDEX FOR (v:NameVector) ON (v.embedding) OPTIONS {{dimension: {dim}, "
            f"similarityFunction: 'cosine'}}"]


def drop_vector_index_statement(backend: str) -> str:
    if backend == "neo4j":
        return f"DROP INDEX {VECTOR_INDEX_NAME} IF EXISTS"
    return "DROP VECTOR INDEX FOR (v:NameVector) ON (v.embedding)"


def text_index_statements(backend: str) -> list[str]:
    """Indexes of vector texts, on the vectors and on the products naming them."""
    if backend == "neo4j":
        return ["CREATE INDEX name_vector_text IF NOT EXISTS FOR (v:NameVector) ON (v.text)",
                "CREATE INDEX product_vector_text IF NOT EXISTS FOR (p:Product) ON (p._vt)"]
    return ["CREATE INDEX FOR (v:NameVector) ON (v.text)", "CREATE INDEX FOR (p:Product) ON (p._vt)"]
