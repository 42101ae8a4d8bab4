"""The texts procedure questions are answered from (FAQs and policies), and the catalog version
their cached embeddings are keyed on."""

from kg.queries import q

CATALOG_VERSION = q(
    "procedures.catalog_version",
    "MATCH (m:Meta {key: 'catalog'}) RETURN m.version AS version",
    description="The catalog version ((:Meta {key:'catalog'}).version); caches compare it.",
)

CORPUS = q(
    "procedures.corpus",
    """
    MATCH (f:FAQ)
    RETURN 'faq' AS kind, f.faq_id AS id, f.question AS title, f.answer AS text, f.topic AS topic
    UNION
    MATCH (p:Policy)
    RETURN 'policy' AS kind, p.policy_id AS id, p.title AS title, p.text AS text, p.type AS topic
    """,
    description="Every FAQ and policy text, for semantic search over store procedures.",
)
