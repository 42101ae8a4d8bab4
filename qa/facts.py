"""Typed facts: one pydantic model per kind of record a reply is built from.

A fact is what retrieval found (a product, an order, a policy, ...), flat and JSON-safe, so the
template writer words it, the grounding guard checks an LLM reply against it and the API shows
it to the client unchanged. `Fact` is the discriminated union of every kind (`kind` is the
discriminator); code reads the typed attributes (`fact.price`), never strings.

The wire shape is the one the chat API has always sent: ``{"kind": "product", "data": {...}}``
where ``data`` holds the fields that were given, in the order they were given (a field left out
stays out; one given as ``None`` is sent as ``null``). `FactModel` does that conversion in both
directions, so ``make_fact("product", {...})`` and ``Fact`` validation accept the wire shape, and
``fact.data`` is the wire ``data`` object (what the guard and the safety filter walk). The JSON
Schema (OpenAPI) of each kind describes that wire shape too.

A kind whose data belongs to one customer (an `OwnedFact`: order, order item, invoice, customer)
carries `customer_id`; the safety filter shows its e-mail addresses, phone numbers and addresses
only to that customer, and to nobody when `customer_id` is not set.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    PrivateAttr,
    SerializerFunctionWrapHandler,
    TypeAdapter,
    ValidatorFunctionWrapHandler,
    model_serializer,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

# A number as the graph stores it: an int stays an int, a float a float (JSON and wording keep it).
Number = int | float
ActionKind = Literal["cancel_order", "change_shipping_address", "return_request"]


class FactModel(BaseModel):
    """Base of every fact kind: typed fields in, the wire shape ``{kind, data}`` out."""

    model_config = ConfigDict(extra="forbid")

    kind: str
    # Fields whose wire name is not a usable attribute name (field name -> key in `data`).
    wire_names: ClassVar[dict[str, str]] = {}
    # The fields in the order they were given (the order of the wire `data` object).
    _keys: tuple[str, ...] = PrivateAttr(default=())

    @model_validator(mode="wrap")
    @classmethod
    def _from_wire(cls, value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        if isinstance(value, dict) and isinstance(value.get("data"), dict) and set(value) <= {"kind", "data"}:
            names = {wire: name for name, wire in cls.wire_names.items()}
            flat = {names.get(k, k): v for k, v in value["data"].items()}
            value = {**flat, **({"kind": value["kind"]} if "kind" in value else {})}
        fact = handler(value)
        if isinstance(value, dict) and isinstance(fact, FactModel):
            fact._keys = tuple(k for k in value if k != "kind")
        return fact

    def __setattr__(self, name: str, value: Any) -> None:
        super().__setattr__(name, value)
        if name in type(self).model_fields and name != "kind" and name not in self._keys:
            self._keys = (*self._keys, name)

    @model_serializer(mode="wrap")
    def _to_wire(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        flat = handler(self)
        given = self.model_fields_set
        names = [k for k in self._keys if k in given]
        names += [k for k in type(self).model_fields if k in given and k not in names and k != "kind"]
        return {"kind": self.kind, "data": {self.wire_names.get(k, k): flat[k] for k in names}}

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler
                                     ) -> JsonSchemaValue:
        """The wire shape, in validation and serialization mode alike: `kind` plus a `data`
        object with this kind's fields."""

        def without_serializer(schema: Any) -> Any:
            out = {k: v for k, v in schema.items() if k != "serialization"}
            if isinstance(out.get("schema"), dict) and out.get("type") != "model":
                out["schema"] = without_serializer(out["schema"])
            return out

        ref = handler(without_serializer(core_schema))
        schema = handler.resolve_ref_schema(ref)
        props = {cls.wire_names.get(k, k): v for k, v in schema.get("properties", {}).items() if k != "kind"}
        data: dict[str, Any] = {"type": "object", "properties": props, "additionalProperties": False}
        required = [cls.wire_names.get(r, r) for r in schema.get("required", []) if r != "kind"]
        if required:
            data["required"] = required
        schema.clear()
        schema.update(title=cls.__name__, type="object", required=["kind", "data"],
                      properties={"kind": {"const": cls.model_fields["kind"].default, "type": "string"},
                                  "data": data})
        if cls.__doc__:
            schema["description"] = " ".join(cls.__doc__.split())
        return ref

    @property
    def data(self) -> dict[str, Any]:
        """The wire `data` object (every value JSON-safe)."""
        data: dict[str, Any] = self.model_dump()["data"]
        return data



class OwnedFact(FactModel):
    """A fact whose data belongs to one customer: `customer_id` says whose (set by the handler
    that read it through the signed-in customer)."""

    customer_id: str | None = None


# -- products ------------------------------------------------------------------------------------
class ProductFields(FactModel):
    sku: str
    name: str | None = None
    brand: str | None = None
    category: str | None = None
    price: float | None = None
    currency: str | None = None
    stock: int | None = None
    in_stock: bool | None = None
    status: str | None = None
    rating: float | None = None
    warranty_months: int | None = None
    description: str | None = None
    attributes: dict[str, str | int | float | bool] | None = None


class ProductFact(ProductFields):
    """A product of the catalog (only the fields the question needs)."""

    kind: Literal["product"] = "product"


class RecommendationFact(ProductFields):
    """A recommended product, with why (`reason`: similar, cheaper, compatible, also_bought,
    personal, filtered) and the figure behind it."""

    kind: Literal["recommendation"] = "recommendation"
    reason: str
    together: int | None = None  # orders that contained both
    shared: int | None = None  # attribute values in common
    because: str | None = None  # the past purchase it follows from
    compatible_with: str | None = None


class ProductGroupFact(FactModel):
    """A summary of the products of a brand and/or category (per currency)."""

    kind: Literal["product_group"] = "product_group"
    brand: str | None = None
    category: str | None = None
    attribute: str | None = None
    count: int
    in_stock: Number | None = None
    min_price: float | None = None
    max_price: float | None = None
    currency: str | None = None


class ComparisonFact(FactModel):
    """What a comparison found: the cheaper and the better rated product."""

    kind: Literal["comparison"] = "comparison"
    cheaper: str | None = None
    cheaper_name: str | None = None
    price_difference: float | None = None
    currency: str | None = None
    better_rated: str | None = None
    better_rated_name: str | None = None


class WarrantyFact(FactModel):
    """A product's warranty: its own (`source` product), the most specific warranty policy
    (policy) or none."""

    kind: Literal["warranty"] = "warranty"
    sku: str
    name: str | None = None
    months: int | None = None
    source: Literal["product", "policy", "none"]
    policy_id: str | None = None
    title: str | None = None
    text: str | None = None
    scope: str | None = None
    applies_to: str | None = None
    days: int | None = None


class PromotionFact(FactModel):
    """A promotion in force."""

    kind: Literal["promotion"] = "promotion"
    code: str
    description: str | None = None
    discount_percent: Number | None = None
    starts: str | None = None
    ends: str | None = None
    applies_to: str | None = None


class CandidateFact(FactModel):
    """One of the nodes an ambiguous mention may mean (a clarifying question lists them)."""

    kind: Literal["candidate"] = "candidate"
    node_id: str | None = None
    name: str
    label: str | None = None


class VariantsFact(FactModel):
    """A mention that fits several products whose answers to the question are the same: the
    question was answered at once, and these are the products it holds for."""

    kind: Literal["variants"] = "variants"
    mention: str
    names: list[str] = Field(default_factory=list)
    skus: list[str] = Field(default_factory=list)


# -- orders --------------------------------------------------------------------------------------
class OrderFields(OwnedFact):
    order_id: str
    status: str | None = None
    placed_at: str | None = None
    shipped_at: str | None = None
    delivered_at: str | None = None
    eta: str | None = None
    carrier: str | None = None
    tracking_number: str | None = None
    shipping_method: str | None = None
    payment_method: str | None = None
    ship_to: str | None = None
    total: float | None = None
    currency: str | None = None


class OrderFact(OrderFields):
    """An order of the signed-in customer (only the fields the question needs)."""

    kind: Literal["order"] = "order"


class InvoiceFact(OrderFields):
    """The invoice view of an order of the signed-in customer."""

    kind: Literal["invoice"] = "invoice"


class OrderOptionFact(FactModel):
    """One of the customer's orders a question without an order number may mean."""

    kind: Literal["order_option"] = "order_option"
    order_id: str
    status: str | None = None
    placed_at: str | None = None
    total: float | None = None
    currency: str | None = None
    first_item: str | None = None
    item_count: int | None = None


class OrderItemFact(OwnedFact):
    """A line of an order."""

    kind: Literal["order_item"] = "order_item"
    order_id: str
    sku: str
    name: str | None = None
    quantity: int | None = None
    unit_price: float | None = None
    discount: Number | None = None
    currency: str | None = None


class RequestFact(FactModel):
    """A request the customer made (a return, a refund, a cancellation...)."""

    kind: Literal["request"] = "request"
    wire_names: ClassVar[dict[str, str]] = {"request_kind": "kind"}
    request_id: str
    request_kind: str | None = None  # return, refund, cancel, change_address
    status: str | None = None
    reason: str | None = None
    created_at: str | None = None
    order_id: str | None = None
    order_status: str | None = None
    total: Number | None = None
    currency: str | None = None


class ReturnWindowFact(FactModel):
    """Whether an item of a delivered order can still be returned, and until when."""

    kind: Literal["return_window"] = "return_window"
    order_id: str
    sku: str
    name: str | None = None
    policy_id: str | None = None
    policy_title: str | None = None
    days: int | None = None
    fee: Number | None = None
    delivered_at: str | None = None
    counted_from: Literal["delivery", "shipping"] | None = None  # no delivery date recorded: the ship date
    since: str | None = None  # the day the window counts from
    deadline: str | None = None
    open: bool


class CancellationFeeFact(FactModel):
    """What cancelling an order costs now (`fee`), and, for an order not yet shipped, what it
    would cost once shipped (`fee_after_shipping`, when the policy allows that at all)."""

    kind: Literal["cancellation_fee"] = "cancellation_fee"
    order_id: str
    status: str | None = None
    cancellable: bool
    fee: float
    currency: str | None = None
    policy: str | None = None  # the policy's title
    free_days: float | None = None  # free for this many days after placing
    after_shipping: bool | None = None  # a shipped order can still be cancelled (for the policy's fee)


class CancellationTermsFact(FactModel):
    """A cancellation policy read as rules (asked without an order): free until the order ships
    (or for `free_days` after placing), then `fee`; whether a shipped order can be cancelled."""

    kind: Literal["cancellation_terms"] = "cancellation_terms"
    policy_id: str | None = None
    title: str | None = None
    fee: float | None = None
    currency: str | None = None
    free_days: float | None = None
    after_shipping: bool
    not_after_shipping: bool | None = None  # the policy says a shipped order can no longer be cancelled
    scope: str | None = None
    applies_to: str | None = None
    for_: str | None = None
    asked: Literal["unshipped", "shipped"] | None = None  # the question was about such orders only
    wire_names: ClassVar[dict[str, str]] = {"for_": "for"}


class ShippingRegionFact(FactModel):
    """Whether the shop ships to a place the shopper named: `served` None when the shop's data
    lists no regions (nobody knows), else the methods that go there."""

    kind: Literal["shipping_region"] = "shipping_region"
    place: str
    served: bool | None = None
    methods: list[str] = Field(default_factory=list)
    regions: list[str] = Field(default_factory=list)  # every region the data lists, for a "no"


class CarrierFact(FactModel):
    """A carrier the shop's orders travel with, and the delivery methods it carried them for."""

    kind: Literal["carrier"] = "carrier"
    name: str
    methods: list[str] = Field(default_factory=list)


class ActionFact(FactModel):
    """An action on an order: proposed (awaiting yes or no) or, with `done`, carried out."""

    kind: Literal["action"] = "action"
    action: ActionKind
    order_id: str
    fee: float | None = None
    currency: str | None = None
    policy: str | None = None
    new_address: str | None = None
    old_address: str | None = None
    items: list[str] | None = None
    deadline: str | None = None
    reason: str | None = None
    request_id: str | None = None
    done: bool | None = None


class ActionRefusedFact(FactModel):
    """An action that is not possible, and why (`reason`: already_shipped, window_closed...)."""

    kind: Literal["action_refused"] = "action_refused"
    action: ActionKind
    order_id: str | None = None
    reason: str
    status: str | None = None
    deadline: str | None = None
    days: int | None = None
    request_id: str | None = None


class ActionCancelledFact(FactModel):
    """A proposed action the shopper said no to."""

    kind: Literal["action_cancelled"] = "action_cancelled"
    action: ActionKind
    order_id: str


class ActionDroppedFact(FactModel):
    """A proposed action dropped because the shopper asked something else."""

    kind: Literal["action_dropped"] = "action_dropped"
    action: ActionKind
    order_id: str


class QuestionDroppedFact(FactModel):
    """A question the bot had asked (which order, the new address...) set aside because the
    shopper made a new request instead; `intent` is what the question was for."""

    kind: Literal["question_dropped"] = "question_dropped"
    intent: str


# -- policies and procedures -----------------------------------------------------------------
class PolicyFact(FactModel):
    """The store policy that applies (the most specific of its type), with what it was asked
    for (`for`, `sku`)."""

    kind: Literal["policy"] = "policy"
    wire_names: ClassVar[dict[str, str]] = {"for_": "for"}
    policy_id: str | None = None
    type: str
    title: str | None = None
    text: str | None = None
    days: int | None = None
    fee: float | None = None
    scope: str | None = None
    currency: str | None = None
    applies_to: str | None = None
    for_: str | None = None  # the product, brand or category asked about
    sku: str | None = None
    overridden_by: str | None = None  # listed among "other rules": the title of the rule that applies instead


class PolicyTextFact(FactModel):
    """A policy text found by semantic search for a procedure question."""

    kind: Literal["policy_text"] = "policy_text"
    policy_id: str | None = None
    title: str | None = None
    text: str | None = None
    type: str | None = None
    score: float | None = None


class FaqFact(FactModel):
    """An FAQ entry found by semantic search for a procedure question."""

    kind: Literal["faq"] = "faq"
    question: str
    answer: str
    topic: str | None = None
    score: float | None = None


class ShippingMethodFact(FactModel):
    """A delivery option."""

    kind: Literal["shipping_method"] = "shipping_method"
    name: str
    min_days: int | None = None
    max_days: int | None = None
    cost: float | None = None
    free_over: float | None = None
    regions: list[str] | None = None
    currency: str | None = None


class PaymentMethodFact(FactModel):
    """An accepted way to pay."""

    kind: Literal["payment_method"] = "payment_method"
    name: str
    description: str | None = None


# -- people ------------------------------------------------------------------------------------
class HandoffFact(FactModel):
    """The summary a colleague reads when the conversation is handed to a person."""

    kind: Literal["handoff"] = "handoff"
    reason: str
    customer_id: str | None = None
    turns: int | None = None
    intents: list[str] | None = None
    products: list[str] | None = None
    orders: list[str] | None = None
    recent_messages: list[str] | None = None
    summary: str | None = None


class CustomerFact(OwnedFact):
    """A customer's own contact details."""

    kind: Literal["customer"] = "customer"
    name: str | None = None
    email: str | None = None
    phone: str | None = None
    city: str | None = None
    country: str | None = None
    tier: str | None = None


class SupplierFact(FactModel):
    """A supplier's business contact line (public)."""

    kind: Literal["supplier"] = "supplier"
    supplier_id: str | None = None
    name: str
    country: str | None = None
    phone: str | None = None


Fact = Annotated[
    ProductFact | RecommendationFact | ProductGroupFact | ComparisonFact | WarrantyFact | PromotionFact
    | CandidateFact | VariantsFact | OrderFact | InvoiceFact | OrderOptionFact | OrderItemFact | RequestFact
    | ReturnWindowFact | CancellationFeeFact | CancellationTermsFact | ShippingRegionFact | CarrierFact | ActionFact
    | ActionRefusedFact | ActionCancelledFact | ActionDroppedFact | QuestionDroppedFact | PolicyFact
    | PolicyTextFact | FaqFact | ShippingMethodFact | PaymentMethodFact | HandoffFact | CustomerFact | SupplierFact,
    Field(discriminator="kind"),
]
_FACT: TypeAdapter[Fact] = TypeAdapter(Fact)

F = TypeVar("F", bound=FactModel)


def make_fact(kind: str, data: dict[str, Any]) -> Fact:
    """The typed fact for a wire record (``kind`` picks the model; ``data`` its fields)."""
    return _FACT.validate_python({"kind": kind, "data": data})


def facts_of(facts: list[Fact], cls: type[F]) -> list[F]:
    """The facts of one kind, in order."""
    return [f for f in facts if isinstance(f, cls)]


def first_of(facts: list[Fact], cls: type[F]) -> F | None:
    return next((f for f in facts if isinstance(f, cls)), None)
