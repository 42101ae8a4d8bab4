"""Product-name vectors kept in the graph, beside the full-text index, for entity linking
(nlu/linking): computed once per name (at import, on a single-product edit, or by `kgqa graph
embed` for a catalog imported before), searched through the graph engine's vector index, so no
worker computes or holds the catalog's vectors.

A vector lives on a node of its own, `(:NameVector {sku, name, embedding})`, not on the product:
FalkorDB 4.16 re-inserts a node into its vector index whenever any property of the node is set,
and a deleted or re-inserted entry keeps its place among the nearest neighbours, so searches come
back with fewer rows as products change (measured: 50 asked, 16 returned after two price
updates). Prices and stock change often, names rarely: a vector node is only ever created, or
deleted when its product's name changed or the product went away. The searches still ask for
more rows than they need and join back to the product, and `kg/embeddings.py` rebuilds the index
when enough vectors have been replaced since it was built.

`name` records the text a vector was computed from: a product whose name has no vector node with
that name is stale, and only stale products are embedded. FalkorDB's vector search returns the
cosine *distance*, Neo4j's a similarity in [0, 1]; the search turns both into the cosine.
"""

from __future__ import annotations

from kg.queries import q

VECTOR_INDEX_NAME = "name_vector_embedding"  # Neo4j names its indexes; FalkorDB keys them by label

_STALE = """
    MATCH (p:Product)
    WHERE p.name IS NOT NULL
    OPTIONAL MATCH (v:NameVector {sku: p.sku})
    WITH p, v WHERE v IS NULL OR v.name <> p.name"""

STALE = q(
    "embeddings.stale",
    _STALE + """
    RETURN p.sku AS sku, p.name AS name, v IS NOT NULL AS replaces
    LIMIT $limit
    """,
    description="Up to $limit products whose name has no vector yet, or a vector of an older name.",
)

STALE_OF = q(
    "embeddings.stale_of",
    """
    UNWIND $skus AS wanted
    MATCH (p:Product {sku: wanted})
    WHERE p.name IS NOT NULL
    OPTIONAL MATCH (v:NameVector {sku: p.sku})
    WITH p, v WHERE v IS NULL OR v.name <> p.name
    RETURN p.sku AS sku, p.name AS name, v IS NOT NULL AS replaces
    """,
    description="Which of the products $skus need a vector (a single-product edit: no catalog-wide scan).",
)

STALE_COUNT = q(
    "embeddings.stale_count",
    _STALE + """
    RETURN count(p) AS stale
    """,
    description="How many products still need a vector (readiness and the migration's progress).",
)

# Both backends: a product renamed since it was read does not match; its old vector node goes.
_REPLACE = """
    UNWIND $rows AS r
    MATCH (p:Product {sku: r[0]})
    WHERE p.name = r[2]
    OPTIONAL MATCH (old:NameVector {sku: r[0]})
    DELETE old
    WITH r"""

WRITE = q(
    "embeddings.write",
    _REPLACE + """
    CREATE (:NameVector {sku: r[0], name: r[2], embedding: vecf32(r[1])})
    RETURN count(*) AS written
    """,
    read_only=False,
    variants={"neo4j": _REPLACE + """
    CREATE (v:NameVector {sku: r[0], name: r[2]})
    WITH v, r
    CALL db.create.setNodeVectorProperty(v, 'embedding', r[1])
    RETURN count(*) AS written
    """},
    description="Store [sku, vector, name] rows as new vector nodes (the old one of a sku goes); a product "
                "renamed since it was read is skipped and stays stale.",
)

ORPHANS_DELETE = q(
    "embeddings.delete_orphans",
    """
    MATCH (v:NameVector)
    OPTIONAL MATCH (p:Product {sku: v.sku})
    WITH v, p WHERE p IS NULL
    DELETE v
    RETURN count(*) AS deleted
    """,
    read_only=False,
    description="Vectors of products that no longer exist.",
)

CHURN = q(
    "embeddings.churn",
    """
    MERGE (m:Meta {key: 'name_vectors'})
    SET m.replaced = CASE WHEN $reset THEN 0 ELSE coalesce(m.replaced, 0) + $replaced END
    RETURN m.replaced AS replaced
    """,
    read_only=False,
    description="Vectors replaced or removed since the vector index was last built ($reset: it was just built).",
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
    MATCH (p:Product {sku: node.sku})
    WHERE p.name = node.name
    WITH p.sku AS sku, max(1.0 - score) AS cosine
    RETURN sku, cosine ORDER BY cosine DESC, sku LIMIT $k
    """,
    variants={"neo4j": f"""
    CALL db.index.vector.queryNodes('{VECTOR_INDEX_NAME}', $fetch, $vector) YIELD node, score
    MATCH (p:Product {{sku: node.sku}})
    WHERE p.name = node.name
    WITH p.sku AS sku, max(2.0 * score - 1.0) AS cosine
    RETURN sku, cosine ORDER BY cosine DESC, sku LIMIT $k
    """},
    description="The $k products whose name vectors are nearest $vector (cosine), through the vector index; "
                "$fetch (more than $k) absorbs entries the index keeps for replaced vectors.",
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
    """The DDL creating the name vector index (cosine) for `dimension`-long vectors, and the sku index."""
    dim = int(dimension)
    if backend == "neo4j":
        return ["CREATE INDEX name_vector_sku IF NOT EXISTS FOR (v:NameVector) ON (v.sku)",
                f"CREATE VECTOR INDEX {VECTOR_INDEX_NAME} IF NOT EXISTS FOR (v:NameVector) ON (v.embedding) "
                f"OPTIONS {{indexConfig: {{`vector.dimensions`: {dim}, `vector.similarity_function`: 'cosine'}}}}"]
    return ["CREATE INDEX FOR (v:NameVector) ON (v.sku)",
            f"CREATE VECTOR INDEX FOR (v:NameVector) ON (v.embedding) OPTIONS {{dimension: {dim}, "
            f"similarityFunction: 'cosine'}}"]


def drop_vector_index_statement(backend: str) -> str:
    if backend == "neo4j":
        return f"DROP INDEX {VECTOR_INDEX_NAME} IF EXISTS"
    return "DROP VECTOR INDEX FOR (v:NameVector) ON (v.embedding)"
