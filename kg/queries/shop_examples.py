"""Shop examples (nlu/example_store.py): labelled customer messages a catalog manager adds so that
understanding adapts without retraining.

    (:ShopExample {id, text, intent, added_at, added_by, pos})
    (:ShopExampleSet {key: 'default', version, epoch, updated_at})

`id` is the first 12 hex digits of the SHA-256 of the normalised text, so a text is stored once.
The set node's `version` is bumped in the same statement as every add or remove that changed
something; workers compare it (with `epoch`, set when the set node is created, so a graph that
was dropped and rebuilt never looks unchanged) to know when to reload. User text only travels in
parameters.
"""

from kg.queries import q

_FIELDS = ("e.id AS id, e.text AS text, e.intent AS intent, e.added_at AS added_at, "
           "e.added_by AS added_by, e.pos AS pos")

ADD = q(
    "shop_examples.add",
    """
    UNWIND $rows AS row
    OPTIONAL MATCH (old:ShopExample {id: row.id})
    WITH row, old IS NULL AS fresh
    MERGE (e:ShopExample {id: row.id})
    ON CREATE SET e.text = row.text, e.intent = row.intent, e.added_at = $now, e.added_by = $added_by,
                  e.pos = row.pos
    WITH collect(e.id) AS ids, collect(fresh) AS fresh, collect(e.intent) AS intents
    MERGE (s:ShopExampleSet {key: 'default'})
    ON CREATE SET s.version = 0, s.epoch = $epoch
    SET s.version = s.version + CASE WHEN any(f IN fresh WHERE f) THEN 1 ELSE 0 END, s.updated_at = $now
    RETURN ids, fresh, intents, s.version AS version, s.epoch AS epoch
    """,
    read_only=False,
    description="Add shop examples ($rows: {id, text, intent, pos}); a stored id keeps its text and intent. "
                "Bumps the set's version when anything was created.",
)

LIST = q(
    "shop_examples.list",
    "MATCH (e:ShopExample) RETURN " + _FIELDS + " ORDER BY added_at, pos, id",
    description="Every shop example, oldest first.",
)

BY_IDS = q(
    "shop_examples.by_ids",
    "MATCH (e:ShopExample) WHERE e.id IN $ids RETURN " + _FIELDS + " ORDER BY added_at, pos, id",
    description="The shop examples with these ids (contradiction checks before an add).",
)

COUNT = q(
    "shop_examples.count",
    "MATCH (e:ShopExample) RETURN count(e) AS n",
    description="How many shop examples are stored (adds stop at a limit).",
)

REMOVE = q(
    "shop_examples.remove",
    """
    OPTIONAL MATCH (e:ShopExample) WHERE e.id IN $ids
    WITH collect(e) AS found
    MERGE (s:ShopExampleSet {key: 'default'})
    ON CREATE SET s.version = 0, s.epoch = $epoch
    SET s.version = s.version + CASE WHEN size(found) > 0 THEN 1 ELSE 0 END, s.updated_at = $now
    WITH s, found
    FOREACH (x IN found | DETACH DELETE x)
    RETURN size(found) AS removed, s.version AS version, s.epoch AS epoch
    """,
    read_only=False,
    description="Remove shop examples by id; bumps the set's version when any was removed.",
)

VERSION = q(
    "shop_examples.version",
    "MATCH (s:ShopExampleSet {key: 'default'}) RETURN s.version AS version, s.epoch AS epoch",
    description="The shop examples' version and epoch (workers reload when either changed).",
)
