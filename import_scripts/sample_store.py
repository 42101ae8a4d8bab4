"""A deterministic sample store in the import format of DESIGN section 3.

The whole system (import, entity linking, queries, replies, benchmarks) needs a shop that looks
like a real one without anyone's real data in it: model lines sold in several variants (so a
mention such as "the Aurora X2" is ambiguous), model numbers with hyphens (so linking has to
cope with "na700x"), accessories that name the devices they fit, policies that override each
other by specificity, and orders in every state with dates that agree with that state.

Everything derives from `random.Random` instances seeded from the arguments, never from the
global generator or the wall clock, so the same arguments give byte-identical files on every
machine. Products and orders are written row by row; what has to be remembered about a product
for the orders (brand, category, price, a companion accessory) lives in compact arrays of a few
bytes per product, so a million products run in flat, modest memory.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import json
import math
import os
import random
import re
import unicodedata
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from itertools import accumulate
from itertools import product as cartesian
from pathlib import Path
from types import MappingProxyType
from typing import IO, Any

import click
from tqdm import tqdm

# --------------------------------------------------------------------------------------------
# Catalog vocabulary. Tuples of frozen dataclasses: shared, never mutated.
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Dim:
    """A way in which the variants of one model line differ (colour, size, storage...)."""

    key: str
    options: tuple[str, ...]
    pick: tuple[int, int]
    contiguous: bool = False  # sizes and storage tiers come in runs; colours are picked freely
    step: float = 0.0  # price added per rank in `options`: a bigger tier costs more
    label: str = "{}"  # how the value reads in a product name


@dataclass(frozen=True)
class Attr:
    """A spec shared by every variant of a line; one of `values` is drawn per line."""

    key: str
    values: tuple[Any, ...]


@dataclass(frozen=True)
class Category:
    name: str
    parent: str
    code: str
    description: str
    nouns: tuple[str, ...] = ()
    words: tuple[str, ...] = ()
    suffixes: tuple[str, ...] = ("", "2", "3", "4", "5", "X", "X2", "Pro", "Lite", "Max", "Plus", "S",
                                 "Air", "Mini", "II", "Neo", "SE", "Elite")
    price: tuple[float, float] = (0.0, 0.0)
    dims: tuple[Dim, ...] = ()
    attrs: tuple[Attr, ...] = ()
    noun_attrs: tuple[tuple[str, tuple[Attr, ...]], ...] = ()  # per-noun overrides keep specs plausible
    sentences: tuple[str, ...] = ()
    extras: tuple[str, ...] = ()
    warranty: tuple[float, tuple[int, ...]] = (0.0, ())
    code_share: float = 0.1  # share of lines named by a model number ("NA-1040BT") instead of a word
    max_variants: int = 6
    line_weight: int = 0  # share of new model lines; 0 for accessories, which follow their device
    order_weight: int = 0  # share of first items in orders


def _span(lo: int, hi: int, step: int = 1) -> tuple[int, ...]:
    return tuple(range(lo, hi + 1, step))


_TECH_COLOURS = ("Black", "Silver", "Midnight Blue", "Sand", "White", "Forest Green", "Rose")
_SHOE_SIZES = ("US 6", "US 6.5", "US 7", "US 7.5", "US 8", "US 8.5", "US 9", "US 9.5", "US 10", "US 10.5",
               "US 11", "US 11.5", "US 12", "US 13")

CATEGORIES: tuple[Category, ...] = (
    Category("Electronics", "", "EL", "Phones, computers, audio, wearables and cameras."),
    Category("Accessories", "", "AC", "Cases, chargers, keyboards and bands made for our devices."),
    Category("Home", "", "HO", "Kitchen appliances, furniture and lighting."),
    Category("Sports", "", "SP", "Running, cycling and fitness gear."),
    Category("Fashion", "", "FA", "Outdoor clothing and bags."),
    Category(
        "Headphones", "Electronics", "HP", "Wireless, noise-cancelling and sport headphones and earbuds.",
        nouns=("Wireless Headphones", "Noise Cancelling Headphones", "True Wireless Earbuds", "Over-Ear Headphones",
               "Sport Earbuds"),
        words=("Aurora", "Tide", "Halo", "Nimbus", "Cadence", "Serene", "Drift", "Lyric", "Sonnet", "Breeze",
               "Harbor", "Vesper", "Solace", "Arc"),
        price=(39, 399),
        dims=(Dim("colour", _TECH_COLOURS, (1, 4)),),
        attrs=(Attr("battery_life_hours", _span(18, 60, 2)), Attr("weight_g", _span(180, 330, 5)),
               Attr("connectivity", ("Bluetooth 5.3", "Bluetooth 5.2", "Bluetooth 5.3 and a 3.5 mm jack"))),
        noun_attrs=(("True Wireless Earbuds", (Attr("battery_life_hours", _span(6, 10)), Attr("weight_g", _span(4, 7)))),
                    ("Sport Earbuds", (Attr("battery_life_hours", _span(6, 12)), Attr("weight_g", _span(5, 9))))),
        sentences=("{noun_l} with up to {battery_life_hours} hours of battery life and {connectivity}.",
                   "The {line} brings rich, detailed sound and up to {battery_life_hours} hours of playback "
                   "on a charge."),
        extras=("Multipoint pairing switches between your phone and laptop automatically.",
                "Soft memory-foam cushions keep long listening sessions comfortable.",
                "A 10-minute quick charge gives about 3 hours of playback.",
                "Adaptive noise cancelling adjusts to trains, planes and open offices.",
                "Each one weighs just {weight_g} g."),
        warranty=(0.5, (12, 24)), code_share=0.3, line_weight=10, order_weight=12,
    ),
    Category(
        "Laptops", "Electronics", "LT", "Ultrabooks, 2-in-1s and gaming laptops.",
        nouns=("Laptop", "Ultrabook", "2-in-1 Laptop", "Gaming Laptop"),
        words=("Slate", "Vector", "Summit", "Horizon", "Atlas", "Zenith", "Forge", "Cirrus", "Ridge", "Aspect",
               "Tangent", "Keystone"),
        suffixes=("13", "14", "15", "16", "Pro 14", "Pro 16", "Air 13", "X1", "Plus 15", ""),
        price=(549, 2299),
        dims=(Dim("ram", ("8 GB", "16 GB", "32 GB", "64 GB"), (1, 2), True, 120, "{} RAM"),
              Dim("storage", ("256 GB", "512 GB", "1 TB", "2 TB"), (1, 2), True, 150, "{} SSD"),
              Dim("colour", ("Space Grey", "Silver", "Black", "Slate Blue"), (1, 2))),
        attrs=(Attr("screen_size_in", (13.3, 14.0, 15.6, 16.0, 17.3)), Attr("cpu_cores", (8, 10, 12, 14, 16)),
               Attr("battery_life_hours", _span(8, 22)), Attr("weight_g", _span(1090, 2600, 10))),
        sentences=("A {screen_size_in:g}-inch {noun_l} powered by {cpu_cores} processor cores, with up to "
                   "{battery_life_hours} hours of battery life.",
                   "The {line} puts a {screen_size_in:g}-inch display and {cpu_cores} processor cores in a "
                   "{weight_g} g body."),
        extras=("The backlit keyboard and large glass trackpad make long writing sessions easy.",
                "Two USB-C ports with fast charging and an HDMI port are built in.",
                "A 1080p webcam with a privacy shutter sits above the display.",
                "Wi-Fi 7 and Bluetooth 5.4 are built in."),
        warranty=(0.6, (12, 24, 36)), code_share=0.25, line_weight=7, order_weight=8,
    ),
    Category(
        "Smartphones", "Electronics", "PH", "Unlocked smartphones with 5G.",
        nouns=("Smartphone", "5G Smartphone"),
        words=("Nova", "Vela", "Astra", "Zephyr", "Lyra", "Comet", "Spark", "Flare", "Quasar", "Meteor",
               "Solstice", "Kairo"),
        suffixes=("5", "6", "7", "8", "7 Pro", "8 Pro", "Lite", "Max", "X", "Mini", "Plus", "S", "Ultra"),
        price=(199, 1199),
        dims=(Dim("storage", ("64 GB", "128 GB", "256 GB", "512 GB", "1 TB"), (1, 3), True, 100),
              Dim("colour", ("Graphite", "Glacier", "Coral", "Obsidian", "Sage", "Lavender", "Gold"), (1, 3))),
        attrs=(Attr("screen_size_in", (6.1, 6.3, 6.4, 6.7, 6.8)), Attr("camera_mp", (48, 50, 64, 108, 200)),
               Attr("battery_mah", _span(3800, 5600, 100)), Attr("weight_g", _span(160, 235))),
        sentences=("A {screen_size_in:g}-inch {noun_l} with a {camera_mp} MP main camera and a {battery_mah} mAh "
                   "battery.",
                   "The {line} pairs a {screen_size_in:g}-inch display with a {camera_mp} MP camera in a "
                   "{weight_g} g body."),
        extras=("Charges to 50% in about 20 minutes with a 30 W charger.", "Rated IP68 against dust and water.",
                "Gets five years of software and security updates.", "Dual SIM with eSIM support."),
        warranty=(0.5, (12, 24)), code_share=0.15, line_weight=8, order_weight=10,
    ),
    Category(
        "Tablets", "Electronics", "TB", "Tablets for reading, drawing and streaming.",
        nouns=("Tablet",),
        words=("Canvas", "Vista", "Leaf", "Folio", "Sketch", "Mosaic", "Panorama", "Quire"),
        suffixes=("8", "10", "11", "12", "Pro 11", "Pro 13", "Mini", "Air", "Lite", ""),
        price=(149, 1099),
        dims=(Dim("storage", ("64 GB", "128 GB", "256 GB", "512 GB"), (1, 3), True, 80),
              Dim("colour", ("Silver", "Space Grey", "Blue", "Rose"), (1, 2))),
        attrs=(Attr("screen_size_in", (8.3, 10.9, 11.0, 12.4, 12.9)), Attr("battery_life_hours", _span(9, 15)),
               Attr("weight_g", _span(290, 690, 5)), Attr("stylus_support", (True, False))),
        sentences=("A {noun_l} with a {screen_size_in:g}-inch screen and up to {battery_life_hours} hours of battery "
                   "life.",
                   "The {line} is a light {weight_g} g {noun_l} for reading, drawing and streaming."),
        extras=("Four speakers tuned for films and music.", "Unlocks with a fingerprint sensor in the power button.",
                "Works as a second screen for your laptop."),
        warranty=(0.5, (12, 24)), code_share=0.15, line_weight=4, order_weight=5,
    ),
    Category(
        "Smartwatches", "Electronics", "SW", "Smartwatches and GPS sports watches.",
        nouns=("Smartwatch", "GPS Sports Watch", "Fitness Watch"),
        words=("Pulse", "Stride", "Vita", "Summit", "Core", "Trek", "Beacon", "Crest", "Tempo", "Vigor", "Ascent"),
        suffixes=("2", "3", "4", "Pro", "Active", "S", "GT", "Plus", ""),
        price=(79, 699),
        dims=(Dim("colour", ("Black", "Silver", "Rose Gold", "Olive", "Navy"), (1, 3)),
              Dim("size", ("41 mm", "45 mm"), (1, 2), True, 30)),
        attrs=(Attr("battery_life_hours", (24, 36, 48, 72, 120, 168, 240, 336)),
               Attr("water_resistance", ("5 ATM", "10 ATM", "IP68")), Attr("display", ("AMOLED", "MIP", "LCD")),
               Attr("weight_g", _span(28, 65))),
        sentences=("A {noun_l} with up to {battery_life_hours} hours of battery life and {water_resistance} "
                   "water resistance.",
                   "The {line} tracks heart rate, sleep and workouts and lasts up to {battery_life_hours} hours "
                   "on a charge."),
        extras=("Swap bands in seconds with the quick-release pins.",
                "Pay contactlessly and read notifications right on your wrist.",
                "The {display} display stays readable in bright sunlight."),
        warranty=(0.5, (12, 24)), code_share=0.2, line_weight=5, order_weight=6,
    ),
    Category(
        "Cameras", "Electronics", "CM", "Mirrorless, compact and action cameras.",
        nouns=("Mirrorless Camera", "Compact Camera", "Action Camera", "Digital SLR Camera"),
        words=("Prism", "Focus", "Optic", "Frame", "Shutter", "Iris", "Vantage", "Kite", "Falcon", "Lumen",
               "Tessera"),
        suffixes=("II", "III", "IV", "Mark II", "X", "S", "R", "Z5", ""),
        price=(249, 2999),
        dims=(Dim("kit", ("Body Only", "with 18-55 mm Lens", "with 24-70 mm Lens"), (1, 3), True, 350),
              Dim("colour", ("Black", "Silver"), (1, 2))),
        attrs=(Attr("sensor_mp", (20, 24, 26, 33, 45, 61)), Attr("video", ("4K 30p", "4K 60p", "6K 30p", "8K 24p")),
               Attr("weight_g", _span(120, 950, 5))),
        sentences=("A {sensor_mp} MP {noun_l} that records {video} video.",
                   "The {line} combines a {sensor_mp} MP sensor with {video} video in a {weight_g} g body."),
        extras=("In-body stabilisation keeps handheld shots sharp.",
                "Weather sealing protects against dust and light rain.",
                "Sends photos to your phone over Wi-Fi and Bluetooth."),
        warranty=(0.5, (12, 24, 36)), code_share=0.35, line_weight=4, order_weight=3,
    ),
    Category(
        "Phone Cases", "Accessories", "PC", "Cases made for specific phone models.",
        price=(12, 59),
        dims=(Dim("colour", ("Black", "Clear", "Midnight Blue", "Sage", "Pink", "Sand"), (1, 4)),),
        attrs=(Attr("material", ("Silicone", "Recycled Plastic")), Attr("drop_protection_m", (1.2, 2.0, 3.0, 4.0))),
        noun_attrs=(("Leather Folio Case", (Attr("material", ("Leather",)),)),
                    ("Clear Case", (Attr("material", ("Polycarbonate", "TPU")),)),
                    ("Rugged Case", (Attr("material", ("TPU and Polycarbonate",)),))),
        sentences=("A {noun_l} made for the {target}, with precise cut-outs for every button, port and camera.",
                   "Protects the {target} from drops of up to {drop_protection_m:g} m."),
        extras=("Raised edges keep the screen and camera off the table.", "Works with wireless chargers."),
        order_weight=5,
    ),
    Category(
        "Headphone Cases", "Accessories", "HC", "Carrying cases shaped for specific headphones.",
        price=(12, 45),
        dims=(Dim("colour", ("Black", "Grey", "Navy", "Sand"), (1, 3)),),
        attrs=(Attr("material", ("EVA", "Nylon", "Leather", "Recycled Polyester")), Attr("weight_g", _span(60, 220, 10))),
        sentences=("A {noun_l} shaped to fit the {target} snugly.",
                   "Keeps the {target} safe in a bag, with room for the cable."),
        extras=("A mesh pocket holds the charging cable.", "The {material_l} shell shrugs off knocks and rain."),
        order_weight=2,
    ),
    Category(
        "Chargers & Cables", "Accessories", "CC", "Chargers, docks and cables tested with our devices.",
        price=(12, 89),
        dims=(Dim("colour", ("White", "Black"), (1, 2)),),
        attrs=(Attr("cable_length_m", (1.0, 1.5, 2.0)), Attr("connector", ("USB-C",))),
        sentences=("A {noun_l} tested with the {target}.", "Charges the {target} safely and quickly."),
        extras=("Over-current and over-heat protection keep your device safe.",
                "Comes with a {cable_length_m:g} m cable."),
        order_weight=5,
    ),
    Category(
        "Mice & Keyboards", "Accessories", "MK", "Mice and keyboards that match our laptops and tablets.",
        price=(19, 169),
        dims=(Dim("colour", ("Graphite", "Silver", "White", "Black"), (1, 2)),),
        attrs=(Attr("connectivity", ("Bluetooth", "a 2.4 GHz USB receiver", "Bluetooth or a 2.4 GHz receiver")),
               Attr("weight_g", _span(60, 480, 10))),
        sentences=("A {noun_l} designed to match the {target}, connecting over {connectivity}.",
                   "Pairs with the {target} over {connectivity} in seconds."),
        extras=("A single charge lasts about three months.", "Quiet clicks for shared offices."),
        order_weight=4,
    ),
    Category(
        "Watch Bands", "Accessories", "WB", "Replacement bands for our smartwatches.",
        price=(19, 79),
        dims=(Dim("colour", ("Black", "Olive", "Sand", "Navy", "Tan", "Orange"), (1, 3)),
              Dim("size", ("S/M", "M/L"), (1, 2), True)),
        attrs=(Attr("material", ("Fluoroelastomer",)),),
        noun_attrs=(("Leather Band", (Attr("material", ("Leather",)),)),
                    ("Milanese Loop", (Attr("material", ("Stainless Steel",)),)),
                    ("Nylon Loop", (Attr("material", ("Recycled Nylon",)),))),
        sentences=("A {noun_l} for the {target} that swaps in seconds without tools.",
                   "A {material_l} band made for the {target}."),
        extras=("Sweat- and water-resistant for workouts.",),
        order_weight=2,
    ),
    Category(
        "Kitchen", "Home", "KI", "Small kitchen appliances.",
        nouns=("Espresso Machine", "Stand Mixer", "Blender", "Air Fryer", "Electric Kettle", "Food Processor",
               "Slow Cooker"),
        words=("Crema", "Ember", "Saffron", "Harvest", "Mesa", "Tuscany", "Basil", "Juniper", "Barista", "Hearth"),
        price=(29, 699),
        dims=(Dim("colour", ("Matte Black", "Cream", "Sage Green", "Cherry Red", "Brushed Steel"), (1, 3)),),
        attrs=(Attr("power_w", (800, 1000, 1200, 1500)), Attr("capacity_l", (1.5, 2.0)),
               Attr("material", ("Stainless Steel", "Brushed Aluminium", "BPA-free Plastic", "Enamelled Steel"))),
        noun_attrs=(("Electric Kettle", (Attr("power_w", (2200, 3000)), Attr("capacity_l", (1.0, 1.5, 1.7)))),
                    ("Air Fryer", (Attr("power_w", (1400, 1700, 2000)), Attr("capacity_l", (3.5, 4.5, 5.5)))),
                    ("Slow Cooker", (Attr("power_w", (200, 250, 320)), Attr("capacity_l", (3.5, 4.7, 6.0)))),
                    ("Stand Mixer", (Attr("power_w", (600, 800, 1000)), Attr("capacity_l", (4.3, 4.8, 5.5))))),
        sentences=("{noun_l} with {power_w} W of power, a {capacity_l:g} litre capacity and a {material_l} body.",
                   "The {line} brings {power_w} W of power to everyday cooking."),
        extras=("Dishwasher-safe parts make cleaning quick.", "Auto shut-off and cool-touch housing add safety.",
                "Comes with a recipe booklet with 50 ideas to get started."),
        warranty=(0.3, (12, 24)), code_share=0.2, line_weight=8, order_weight=6,
    ),
    Category(
        "Furniture", "Home", "FU", "Sofas, tables, chairs, desks and storage.",
        nouns=("Sofa", "Armchair", "Dining Table", "Office Chair", "Bookshelf", "Coffee Table", "Bed Frame",
               "Standing Desk"),
        words=("Fjell", "Linden", "Aspen", "Marlow", "Sorrento", "Elmwood", "Tofte", "Brook", "Halvard", "Alder",
               "Juno"),
        suffixes=("", "", "II", "Plus", "Compact", "Grande"),
        price=(129, 2299),
        dims=(Dim("finish", ("Natural Oak", "Smoked Oak", "Walnut", "White", "Charcoal"), (1, 3)),),
        attrs=(Attr("material", ("Solid Oak", "Walnut Veneer", "Steel and Oak", "Beech")),
               Attr("width_cm", _span(60, 200, 5)), Attr("weight_kg", _span(9, 60))),
        noun_attrs=(("Sofa", (Attr("material", ("Bouclé Fabric", "Linen Blend", "Velvet")),
                              Attr("width_cm", _span(180, 260, 10)))),
                    ("Armchair", (Attr("material", ("Bouclé Fabric", "Linen Blend", "Leather")),
                                  Attr("width_cm", _span(70, 95, 5))))),
        sentences=("A {noun_l} in {material_l}, {width_cm} cm wide.",
                   "The {line} {noun_l} is made from {material_l} and built to last."),
        extras=("Delivered with tools and illustrated instructions.", "Adjustable feet level it on uneven floors.",
                "Tested for ten years of daily use."),
        warranty=(0.3, (24, 60)), code_share=0.1, line_weight=6, order_weight=2,
    ),
    Category(
        "Lighting", "Home", "LI", "Lamps, pendants and smart bulbs.",
        nouns=("Floor Lamp", "Desk Lamp", "Pendant Light", "Table Lamp", "Smart Bulb 4-Pack", "LED Strip Light"),
        words=("Glow", "Beam", "Lantern", "Dusk", "Halo", "Aura", "Luma", "Nova", "Ember", "Solis"),
        price=(15, 449),
        dims=(Dim("colour", ("Black", "Brass", "White", "Matte Grey", "Opal"), (1, 3)),),
        attrs=(Attr("wattage_w", (5, 7, 9, 12, 15, 20)), Attr("colour_temperature_k", (2200, 2700, 3000, 4000)),
               Attr("smart", (True, False)), Attr("material", ("Metal", "Glass", "Rattan", "Linen", "Ceramic"))),
        sentences=("A {noun_l} in {material_l} with {colour_temperature_k} K light.",
                   "The {line} uses an efficient {wattage_w} W LED that lasts about 25,000 hours."),
        extras=("Dimmable with a touch control.", "Works with most smart-home hubs.",
                "The fabric cable is 2 m long."),
        warranty=(0.3, (24, 36, 60)), code_share=0.2, line_weight=6, order_weight=4,
    ),
    Category(
        "Running Shoes", "Sports", "RS", "Road, trail and racing shoes.",
        nouns=("Running Shoes", "Trail Running Shoes", "Racing Shoes"),
        words=("Gale", "Swift", "Glide", "Zephyr", "Rush", "Flux", "Surge", "Kinetic", "Dash", "Tempo", "Pace",
               "Vapor"),
        suffixes=("2", "3", "4", "5", "6", "Elite", "Trail", "Lite", "WP", ""),
        price=(69, 239),
        dims=(Dim("colour", ("Volt Green", "Black", "White", "Coral", "Ocean Blue", "Grey"), (1, 2)),
              Dim("size", _SHOE_SIZES, (3, 5), True)),
        attrs=(Attr("weight_g", _span(190, 340, 5)), Attr("drop_mm", (4, 6, 8, 10, 12)),
               Attr("upper", ("Engineered Mesh", "Knit", "Recycled Mesh"))),
        sentences=("{noun_l} with {upper_l} uppers and a heel-to-toe drop of {drop_mm} mm.",
                   "The {line} weighs {weight_g} g per shoe and is built for daily miles."),
        extras=("A grippy rubber outsole holds on wet roads.", "Reflective details keep you visible at dusk.",
                "Runs true to size."),
        warranty=(0.1, (6, 12)), code_share=0.05, max_variants=8, line_weight=8, order_weight=8,
    ),
    Category(
        "Cycling", "Sports", "CY", "Road, gravel, hybrid and electric bikes.",
        nouns=("Road Bike", "Gravel Bike", "Hybrid Bike", "E-Bike"),
        words=("Strada", "Velo", "Cadenza", "Gradient", "Corsa", "Vento", "Sprint", "Alpe", "Col"),
        suffixes=("2", "3", "SL", "Pro", "Disc", "Sport", ""),
        price=(499, 3999),
        dims=(Dim("size", ("XS", "S", "M", "L", "XL"), (2, 4), True, 0, "Size {}"),
              Dim("colour", ("Matte Black", "Racing Red", "Sky Blue", "Sand"), (1, 2))),
        attrs=(Attr("frame_material", ("Carbon Fibre", "Aluminium", "Chromoly Steel")), Attr("gears", (10, 11, 12, 22, 24)),
               Attr("weight_kg", (7.8, 8.4, 9.1, 9.9, 10.6, 11.5, 13.2))),
        noun_attrs=(("E-Bike", (Attr("weight_kg", (19.5, 21.5, 23.0)), Attr("frame_material", ("Aluminium",)))),),
        sentences=("A {noun_l} with {gears} gears and a frame made of {frame_material_l}.",
                   "The {line} weighs {weight_kg:g} kg and is built for long days in the saddle."),
        extras=("Hydraulic disc brakes stop confidently in the wet.", "Mounts for racks and mudguards are built in.",
                "Delivered 90% assembled with tools included."),
        warranty=(0.5, (24, 60)), code_share=0.1, max_variants=8, line_weight=3, order_weight=2,
    ),
    Category(
        "Fitness", "Sports", "FI", "Mats, rollers, bands and small training gear.",
        nouns=("Yoga Mat", "Exercise Mat", "Foam Roller", "Resistance Band Set", "Jump Rope", "Balance Board"),
        words=("Flex", "Core", "Titan", "Balance", "Zen", "Momentum", "Vigor", "Pivot"),
        price=(12, 129),
        dims=(Dim("colour", ("Black", "Slate Grey", "Teal", "Purple", "Orange"), (1, 3)),),
        attrs=(Attr("material", ("Natural Rubber", "TPE", "Cork", "EVA Foam", "Neoprene")),
               Attr("weight_kg", (0.3, 0.5, 0.8, 1.2, 1.8, 2.5))),
        sentences=("A {noun_l} made of {material_l} that weighs {weight_kg:g} kg.",
                   "The {line} {noun_l} is made of {material_l} for a grippy, durable feel."),
        extras=("Easy to wipe clean after a session.", "Comes with a carrying strap.",
                "Free of latex and PVC."),
        warranty=(0.1, (12,)), code_share=0.05, line_weight=6, order_weight=5,
    ),
    Category(
        "Jackets", "Fashion", "JK", "Rain, down, softshell and fleece jackets.",
        nouns=("Rain Jacket", "Down Jacket", "Softshell Jacket", "Insulated Parka", "Windbreaker", "Fleece Jacket"),
        words=("Summit", "Tundra", "Fjord", "Glacier", "Cascade", "Ridgeline", "Storm", "Alder", "Boreal", "Squall",
               "Cirque"),
        suffixes=("", "2", "Pro", "Hooded", "Lite", "Expedition"),
        price=(59, 449),
        dims=(Dim("colour", ("Black", "Navy", "Olive", "Rust", "Glacier Blue", "Stone"), (1, 2)),
              Dim("size", ("XS", "S", "M", "L", "XL", "XXL"), (3, 5), True, 0, "Size {}")),
        attrs=(Attr("material", ("Recycled Nylon", "Recycled Polyester", "Waxed Cotton")),
               Attr("waterproof_rating_mm", (0, 5000, 10000, 20000)), Attr("fit", ("Regular", "Slim", "Relaxed")),
               Attr("weight_g", _span(180, 1200, 10))),
        noun_attrs=(("Down Jacket", (Attr("material", ("Goose Down", "Recycled Down")),)),
                    ("Fleece Jacket", (Attr("material", ("Polyester Fleece",)), Attr("waterproof_rating_mm", (0,))))),
        sentences=("A {fit_l}-fit {noun_l} made from {material_l}.",
                   "The {line} {noun_l} weighs {weight_g} g and packs into its own pocket."),
        extras=("Two zipped hand pockets and an inside chest pocket.", "The hood adjusts with one hand.",
                "Machine washable at 30 degrees."),
        warranty=(0.1, (12, 24)), code_share=0.05, max_variants=8, line_weight=7, order_weight=5,
    ),
    Category(
        "Backpacks", "Fashion", "BP", "Daypacks, hiking, laptop and travel backpacks.",
        nouns=("Daypack", "Hiking Backpack", "Laptop Backpack", "Travel Backpack", "Camera Backpack"),
        words=("Trailhead", "Voyager", "Commuter", "Nomad", "Alpine", "Drifter", "Pathfinder", "Compass", "Ranger"),
        suffixes=("18", "22", "28", "32", "40", ""),
        price=(35, 279),
        dims=(Dim("colour", ("Black", "Olive", "Navy", "Sand", "Burgundy", "Charcoal"), (1, 3)),),
        attrs=(Attr("capacity_l", (18, 22, 26, 30, 35, 40)),
               Attr("material", ("Recycled Nylon", "Waxed Canvas", "Ripstop Polyester", "Ballistic Nylon")),
               Attr("weight_g", _span(450, 1900, 10)), Attr("laptop_sleeve_in", (0, 14, 16))),
        sentences=("{noun_l} with room for {capacity_l} litres, made of {material_l}.",
                   "The {line} {noun_l} carries {capacity_l} litres and weighs {weight_g} g empty."),
        extras=("Padded straps and a ventilated back panel stay comfortable all day.",
                "A hidden pocket keeps your passport and phone safe.", "Fits under most airline seats."),
        warranty=(0.3, (24, 60)), code_share=0.05, line_weight=6, order_weight=5,
    ),
)


@dataclass(frozen=True)
class Brand:
    name: str
    country: str
    code: str
    categories: tuple[str, ...]


BRANDS: tuple[Brand, ...] = (
    Brand("Nordic Audio", "Sweden", "NA", ("Headphones", "Headphone Cases")),
    Brand("Sonara", "Japan", "SNR", ("Headphones",)),
    Brand("Vellum Sound", "United Kingdom", "VS", ("Headphones",)),
    Brand("Lumina", "South Korea", "LUM", ("Smartphones", "Tablets", "Phone Cases", "Chargers & Cables")),
    Brand("Orbitel", "China", "ORB", ("Smartphones", "Tablets", "Chargers & Cables")),
    Brand("Calyx Mobile", "Finland", "CLX", ("Smartphones",)),
    Brand("Kestrel", "United States", "KES", ("Laptops", "Mice & Keyboards", "Chargers & Cables")),
    Brand("Vantis", "Taiwan", "VAN", ("Laptops", "Tablets")),
    Brand("Meridian Computing", "Ireland", "MER", ("Laptops",)),
    Brand("Halden", "Norway", "HAL", ("Smartwatches", "Watch Bands")),
    Brand("Tempora", "Switzerland", "TMP", ("Smartwatches", "Watch Bands")),
    Brand("Pulsewave", "United States", "PW", ("Smartwatches", "Headphones")),
    Brand("Aperture Works", "Germany", "AW", ("Cameras",)),
    Brand("Fennick", "Japan", "FEN", ("Cameras",)),
    Brand("Lightfield Optics", "Canada", "LFO", ("Cameras",)),
    Brand("Shellcraft", "Canada", "SHC", ("Phone Cases", "Headphone Cases", "Watch Bands")),
    Brand("Voltaic", "United States", "VLT", ("Chargers & Cables",)),
    Brand("Strata Peripherals", "Taiwan", "STR", ("Mice & Keyboards",)),
    Brand("Keyloom", "Germany", "KEY", ("Mice & Keyboards",)),
    Brand("Armadillo Gear", "Australia", "ARM", ("Phone Cases", "Headphone Cases")),
    Brand("Hearthwell", "United Kingdom", "HW", ("Kitchen",)),
    Brand("Copperleaf", "France", "CPL", ("Kitchen",)),
    Brand("Brioso", "Italy", "BRI", ("Kitchen",)),
    Brand("Oakhaven", "Denmark", "OAK", ("Furniture",)),
    Brand("Birchwood Studio", "Canada", "BWS", ("Furniture",)),
    Brand("Casa Alta", "Spain", "CAL", ("Furniture", "Lighting")),
    Brand("Lumenhaus", "Germany", "LMH", ("Lighting",)),
    Brand("Glimmerly", "Netherlands", "GLM", ("Lighting",)),
    Brand("Stridewell", "United States", "SW", ("Running Shoes",)),
    Brand("Aeropace", "Italy", "AP", ("Running Shoes",)),
    Brand("Trailmark", "New Zealand", "TRM", ("Running Shoes", "Backpacks")),
    Brand("Velocita", "Italy", "VEL", ("Cycling",)),
    Brand("Spokewise", "Netherlands", "SPW", ("Cycling",)),
    Brand("Ironpeak", "United States", "IRP", ("Fitness",)),
    Brand("Corefit Labs", "Australia", "CFL", ("Fitness",)),
    Brand("Northwind Outfitters", "Canada", "NWO", ("Jackets", "Backpacks")),
    Brand("Alpenrose", "Austria", "ALP", ("Jackets",)),
    Brand("Driftwood & Co", "Ireland", "DWC", ("Jackets", "Backpacks")),
    Brand("Packhorse", "United Kingdom", "PKH", ("Backpacks",)),
    Brand("Urban Fable", "Spain", "UF", ("Jackets", "Backpacks")),
)

# Brands from these countries list some lines in EUR, so both currencies occur in products.csv.
_EURO_COUNTRIES = ("Finland", "Germany", "France", "Italy", "Spain", "Netherlands", "Ireland", "Austria")
_EUR_PER_USD = Decimal("0.92")


@dataclass(frozen=True)
class Supplier:
    supplier_id: str
    name: str
    country: str
    phone: str
    domain: str  # which top-level categories it supplies


SUPPLIERS: tuple[Supplier, ...] = (
    Supplier("SUP-001", "Pacific Rim Components", "Taiwan", "+886 2 2555 0141", "Electronics"),
    Supplier("SUP-002", "Baltic Electronics Distribution", "Estonia", "+372 655 0192", "Electronics"),
    Supplier("SUP-003", "Pearl River Electronics Trading", "China", "+86 20 5555 0178", "Electronics"),
    Supplier("SUP-004", "Keystone Tech Supply", "United States", "+1 412-555-0104", "Electronics"),
    Supplier("SUP-005", "Rheinland Digital Logistik", "Germany", "+49 221 5550 1932", "Electronics"),
    Supplier("SUP-006", "Maple Leaf Wholesale", "Canada", "+1 416-555-0166", "Accessories"),
    Supplier("SUP-007", "Harbourside Accessories Ltd", "United Kingdom", "+44 117 496 0311", "Accessories"),
    Supplier("SUP-008", "Casa Mediterránea Distribución", "Spain", "+34 91 555 0127", "Home"),
    Supplier("SUP-009", "Nordhus Interiors AB", "Sweden", "+46 8 555 013 40", "Home"),
    Supplier("SUP-010", "Great Lakes Home Supply", "United States", "+1 312-555-0182", "Home"),
    Supplier("SUP-011", "Alpine Sports Wholesale", "Austria", "+43 662 555 0148", "Sports"),
    Supplier("SUP-012", "Southern Cross Outdoor", "Australia", "+61 3 5550 1276", "Sports"),
    Supplier("SUP-013", "Lombardia Cicli Distribuzione", "Italy", "+39 02 5550 1834", "Sports"),
    Supplier("SUP-014", "Atlantic Apparel Group", "Ireland", "+353 1 555 0129", "Fashion"),
    Supplier("SUP-015", "Northern Thread Co.", "Canada", "+1 604-555-0157", "Fashion"),
)


@dataclass(frozen=True)
class Spawn:
    """After a device line, maybe an accessory line made for it (so compatible_with names real lines)."""

    device: str
    accessory: str
    probability: float
    styles: tuple[str, ...]


SPAWNS: tuple[Spawn, ...] = (
    Spawn("Headphones", "Headphone Cases", 0.5, ("Hard Shell Case", "Travel Case", "Zip Pouch", "Protective Case")),
    Spawn("Smartphones", "Phone Cases", 0.8, ("Clear Case", "Rugged Case", "Leather Folio Case", "Slim Silicone Case",
                                              "Magnetic Case")),
    Spawn("Smartphones", "Phone Cases", 0.3, ("Clear Case", "Rugged Case", "Leather Folio Case", "Slim Silicone Case",
                                              "Magnetic Case")),
    Spawn("Smartphones", "Chargers & Cables", 0.3, ("30W USB-C Fast Charger", "Wireless Charging Pad",
                                                    "Braided USB-C Cable")),
    Spawn("Tablets", "Mice & Keyboards", 0.5, ("Folio Keyboard", "Bluetooth Keyboard Cover")),
    Spawn("Tablets", "Chargers & Cables", 0.2, ("45W USB-C Charger", "Braided USB-C Cable")),
    Spawn("Smartwatches", "Watch Bands", 0.7, ("Sport Band", "Leather Band", "Milanese Loop", "Nylon Loop")),
    Spawn("Smartwatches", "Chargers & Cables", 0.2, ("Magnetic Charging Dock", "Charging Cable")),
    Spawn("Laptops", "Mice & Keyboards", 0.4, ("Wireless Mouse", "Ergonomic Mouse", "Compact Bluetooth Keyboard")),
    Spawn("Laptops", "Chargers & Cables", 0.4, ("65W USB-C Power Adapter", "100W GaN Charger", "USB-C Docking Station")),
)

# (first item's category, category of a second item bought with it, probability): "customers also bought".
RELATED: tuple[tuple[str, str, float], ...] = (
    ("Laptops", "Mice & Keyboards", 0.35), ("Laptops", "Backpacks", 0.15), ("Smartphones", "Chargers & Cables", 0.25),
    ("Tablets", "Chargers & Cables", 0.2), ("Cameras", "Backpacks", 0.25), ("Running Shoes", "Fitness", 0.2),
    ("Cycling", "Jackets", 0.15), ("Kitchen", "Lighting", 0.1),
)
_COMPANION_PROBABILITY = 0.45


@dataclass(frozen=True)
class Anchor:
    """A fixed model line at the head of the catalog, so the examples in DESIGN and the docs exist."""

    category: str
    brand: str
    line: str
    noun: str
    options: tuple[tuple[str, ...], ...]  # aligned with the category's dims
    price: float


ANCHORS: tuple[Anchor, ...] = (
    Anchor("Headphones", "Nordic Audio", "Aurora X2", "Wireless Headphones",
           (("Black", "Silver", "Midnight Blue", "Sand"),), 249.99),
    Anchor("Headphones", "Nordic Audio", "NA-700X", "Noise Cancelling Headphones", (("Black", "White"),), 349.99),
    Anchor("Smartphones", "Lumina", "Nova 5", "Smartphone", (("128 GB", "256 GB"), ("Graphite", "Glacier")), 699.00),
    Anchor("Laptops", "Kestrel", "Slate 14", "Laptop", (("16 GB", "32 GB"), ("512 GB",), ("Space Grey",)), 1199.00),
    Anchor("Running Shoes", "Stridewell", "Gale 3", "Running Shoes",
           (("Volt Green",), ("US 8", "US 9", "US 10", "US 11")), 139.99),
)

# --------------------------------------------------------------------------------------------
# Store-level tables: shipping, payment, promotions, policies, FAQs.
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShippingMethod:
    name: str
    min_days: int
    max_days: int
    cost: str
    free_over: str
    regions: tuple[str, ...]
    carriers: tuple[str, ...]
    weight: int


SHIPPING_METHODS: tuple[ShippingMethod, ...] = (
    ShippingMethod("Standard", 3, 5, "4.99", "50.00", ("US", "CA", "UK", "EU"), ("SwiftPost", "ParcelWay"), 60),
    ShippingMethod("Express", 1, 2, "12.99", "150.00", ("US", "CA", "UK", "EU", "AU"), ("Kite Express",), 20),
    ShippingMethod("Next-Day", 1, 1, "19.99", "", ("US", "UK"), ("Kite Express",), 8),
    ShippingMethod("Store Pickup", 2, 4, "0.00", "", ("US", "UK", "EU"), ("ParcelWay",), 7),
    ShippingMethod("International Economy", 7, 14, "24.99", "200.00", ("AU", "worldwide"), ("ParcelWay",), 60),
)
_TRACKING_PREFIX = MappingProxyType({"SwiftPost": "SP", "ParcelWay": "PW", "Kite Express": "KX"})


@dataclass(frozen=True)
class PaymentMethod:
    name: str
    description: str
    countries: tuple[str, ...]  # empty: everywhere
    weight: int


PAYMENT_METHODS: tuple[PaymentMethod, ...] = (
    PaymentMethod("Card", "Visa, Mastercard and American Express credit and debit cards; charged when the order "
                  "is placed, with 3-D Secure confirmation where your bank requires it.", (), 55),
    PaymentMethod("PayPal", "Pay with your PayPal balance or the cards saved in your PayPal account.", (), 20),
    PaymentMethod("Mobile Wallet", "Pay with the wallet on your phone or watch at checkout.", (), 8),
    PaymentMethod("Bank Transfer", "Transfer the total with your order number as the reference; the order ships "
                  "once the payment arrives, usually within 1 to 3 business days.", (), 7),
    PaymentMethod("Gift Card", "Redeem a store gift card at checkout; any remainder can be paid another way.", (), 5),
    PaymentMethod("Cash on Delivery", "Pay the courier in cash or by card on delivery; available in Germany, "
                  "Austria and the Netherlands for orders up to 1,000.00 EUR.",
                  ("Germany", "Austria", "Netherlands"), 3),
    PaymentMethod("Pay Later", "Split the total into 4 interest-free payments over 6 weeks; available in the "
                  "United States and the United Kingdom, subject to approval.", ("United States", "United Kingdom"), 2),
)


@dataclass(frozen=True)
class Promotion:
    code: str
    description: str
    discount_percent: int
    starts: int  # days from `today`
    ends: int
    applies_to: str  # as for policies; "{anchor:LINE:N}" names the Nth variant of an anchor line


PROMOTIONS: tuple[Promotion, ...] = (
    Promotion("WELCOME10", "10% off your first order when you sign up for the newsletter.", 10, -400, 365, ""),
    Promotion("AUDIO20", "20% off all headphones and earbuds.", 20, -10, 20, "category:Headphones"),
    Promotion("RUN15", "15% off running shoes for the spring marathon season.", 15, -90, -60, "category:Running Shoes"),
    Promotion("KESTREL10", "10% off every Kestrel laptop and accessory.", 10, 14, 44, "brand:Kestrel"),
    Promotion("HOME12", "12% off kitchen, furniture and lighting.", 12, -5, 25, "category:Home"),
    Promotion("STUDENT8", "8% off laptops and tablets for students with a valid student email.", 8, -200, 165,
              "category:Laptops;category:Tablets"),
    Promotion("AURORA25", "25% off the Aurora X2 in black and silver, one weekend only.", 25, -30, -28,
              "{anchor:Aurora X2:0};{anchor:Aurora X2:1}"),
    Promotion("HOLIDAY30", "30% off sitewide for the holiday weekend.", 30, 60, 63, ""),
)


@dataclass(frozen=True)
class Policy:
    policy_id: str
    type: str
    title: str
    text: str
    days: int | None = None
    fee: float | None = None
    applies_to: str = ""  # "{anchor:LINE:N}" names the Nth variant of an anchor line


POLICY_TYPES = ("return", "refund", "warranty", "shipping", "payment", "cancellation", "account", "privacy", "other")

POLICIES: tuple[Policy, ...] = (
    Policy("POL-RETURN-STD", "return", "30-day returns",
           "Most items can be returned within 30 days of delivery for a full refund. Items must be unused and in "
           "their original packaging with all accessories. Start a return from the Orders page of your account or "
           "ask customer service; we email a prepaid return label within one business day.", days=30),
    Policy("POL-REFUND-STD", "refund", "How refunds are paid",
           "We inspect returned items within 2 business days of arrival and refund the original payment method. "
           "Card, PayPal and mobile wallet refunds usually appear within 5 to 10 business days; bank transfers can "
           "take up to 10 business days, and gift card payments are refunded to a new gift card. Original shipping "
           "charges are refunded only when the item was faulty or we made a mistake.", days=10),
    Policy("POL-WARRANTY-STD", "warranty", "12-month limited warranty",
           "Every product is covered against manufacturing defects for 12 months from delivery unless a longer "
           "warranty applies to its category, its brand or the product itself. The warranty does not cover "
           "accidental damage, normal wear or unauthorised repairs. To claim, contact customer service with your "
           "order number and a short description or photo of the fault.", days=365),
    Policy("POL-SHIPPING-STD", "shipping", "Dispatch and delivery",
           "Orders placed before 2 pm UTC on a business day leave our warehouse the same day; later orders leave the "
           "next business day. Standard delivery takes 3 to 5 business days and is free on orders over 50.00 USD. "
           "Express, Next-Day, Store Pickup and International Economy are available in selected regions. You "
           "receive a tracking number by email as soon as your parcel ships.", days=5),
    Policy("POL-PAYMENT-STD", "payment", "Accepted payment methods",
           "We accept cards, PayPal, mobile wallets, bank transfer, gift cards, Pay Later in the United States and "
           "the United Kingdom, and cash on delivery in Germany, Austria and the Netherlands. Cards are charged when "
           "the order is placed. Orders paid by bank transfer ship once the money arrives; orders still unpaid "
           "after 7 days are cancelled automatically.", days=7),
    Policy("POL-CANCEL-STD", "cancellation", "Cancelling an order",
           "You can cancel an order free of charge until it ships, from the Orders page or through customer "
           "service. A shipped order can no longer be cancelled: refuse the delivery or return it within the return "
           "period instead. When a shipped order is refused or sent back unopened, a 9.95 USD handling fee is "
           "deducted from the refund.", fee=9.95),
    Policy("POL-ACCOUNT-STD", "account", "Customer accounts",
           "An account lets you track orders, download invoices, manage addresses and start returns. You can change "
           "your details at any time under Account settings. When you close your account we delete your profile "
           "within 30 days; invoices are kept for 10 years because tax law requires it.", days=30),
    Policy("POL-PRIVACY-STD", "privacy", "Privacy and personal data",
           "We use your personal data only to process orders, provide customer service and, if you opt in, send "
           "newsletters. We never sell personal data. You can ask for a copy of your data, or for its deletion, at "
           "any time by writing to privacy@example.com; we reply within 30 days.", days=30),
    Policy("POL-OTHER-PRICEMATCH", "other", "Price match",
           "If you find the same new item for less at another authorised retailer within 14 days of your purchase, "
           "we refund the difference. Marketplace sellers, clearance offers and promotion codes are excluded.",
           days=14),
    Policy("POL-OTHER-GIFTWRAP", "other", "Gift wrapping and gift receipts",
           "Gift wrapping with a handwritten card costs 4.99 USD per item. Gift receipts show no prices and let the "
           "recipient exchange or return the item within the normal return period.", fee=4.99),
    # Overrides: a sku beats a brand, which beats a category (nearest in the hierarchy first),
    # which beats the store-wide policy of the same type.
    Policy("POL-RETURN-SMARTPHONES", "return", "14-day returns on smartphones",
           "Smartphones can be returned within 14 days of delivery. Reset the phone to factory settings, sign out "
           "of all accounts and send it back with its original box and accessories.", days=14,
           applies_to="category:Smartphones"),
    Policy("POL-RETURN-SPORTS", "return", "45-day returns on sports gear",
           "Sports equipment can be returned within 45 days of delivery, as long as it is clean and undamaged.",
           days=45, applies_to="category:Sports"),
    Policy("POL-RETURN-RUNNING", "return", "60-day run test",
           "Running shoes can be returned within 60 days of delivery even after you have run in them, so you can "
           "test them on real roads. One run-tested pair per customer per year.", days=60,
           applies_to="category:Running Shoes"),
    Policy("POL-RETURN-FURNITURE", "return", "Returning furniture",
           "Furniture can be returned within 30 days of delivery. We collect it from your home; a 49.00 USD "
           "collection fee is deducted from the refund unless the item arrived damaged or faulty.", days=30,
           fee=49.00, applies_to="category:Furniture"),
    Policy("POL-RETURN-HYGIENE", "return", "Hygiene seal on earbuds and watches",
           "Headphones, earbuds and smartwatches can be returned within 30 days of delivery only if the hygiene seal "
           "is unbroken, or if the item is faulty.", days=30,
           applies_to="category:Headphones;category:Smartwatches"),
    Policy("POL-RETURN-OAKHAVEN", "return", "100-night trial on Oakhaven furniture",
           "Oakhaven sofas, chairs and beds come with a 100-night home trial: return them within 100 days of "
           "delivery and we collect them free of charge.", days=100, applies_to="brand:Oakhaven"),
    Policy("POL-RETURN-AURORA-LAUNCH", "return", "60-day trial on the Aurora X2 in black",
           "The Nordic Audio Aurora X2 Wireless Headphones in black come with a 60-day listening trial: return them "
           "within 60 days of delivery for a full refund, hygiene seal or not.", days=60,
           applies_to="{anchor:Aurora X2:0}"),
    Policy("POL-WARRANTY-ELECTRONICS", "warranty", "24-month warranty on electronics",
           "Phones, computers, headphones, wearables and cameras are covered against manufacturing defects for 24 "
           "months from delivery.", days=730, applies_to="category:Electronics"),
    Policy("POL-WARRANTY-CAMERAS", "warranty", "36-month warranty on cameras",
           "Cameras are covered for 36 months from delivery, including the sensor and the shutter mechanism.",
           days=1095, applies_to="category:Cameras"),
    Policy("POL-WARRANTY-KESTREL", "warranty", "Kestrel 36-month warranty",
           "Kestrel laptops and accessories carry a 36-month manufacturer warranty with free collection and return "
           "for repairs.", days=1095, applies_to="brand:Kestrel"),
    Policy("POL-WARRANTY-NORTHWIND", "warranty", "Northwind Outfitters 5-year warranty",
           "Northwind Outfitters repairs or replaces any jacket or bag with a faulty seam, zip or buckle for 5 years "
           "from delivery.", days=1825, applies_to="brand:Northwind Outfitters"),
    Policy("POL-WARRANTY-SLATE-CARE", "warranty", "Slate 14 Care Pack",
           "The Kestrel Slate 14 with 16 GB RAM comes with the Care Pack: 48 months of cover including one "
           "accidental damage repair.", days=1460, applies_to="{anchor:Slate 14:0}"),
    Policy("POL-CANCEL-FURNITURE", "cancellation", "Cancelling made-to-order furniture",
           "Furniture is made to order. You can cancel free of charge within 48 hours of placing the order; after "
           "that a 50.00 USD cancellation fee applies, even before the item ships.", days=2, fee=50.00,
           applies_to="category:Furniture"),
    Policy("POL-SHIPPING-FURNITURE", "shipping", "Furniture delivery",
           "Furniture is delivered by a two-person team within 7 to 14 business days, to the room of your choice. "
           "We call the day before to agree a two-hour delivery window.", days=14, applies_to="category:Furniture"),
    Policy("POL-REFUND-CAMERAS", "refund", "Refunds on opened cameras",
           "Opened cameras are refunded after a sensor and shutter check, which adds up to 3 business days to the "
           "usual refund time.", days=13, applies_to="category:Cameras"),
)

FAQS: tuple[tuple[str, str, str], ...] = (
    # (topic, question, answer)
    ("account", "How do I create an account?",
     "Choose Sign in at the top of any page, then Create account. Enter your name, your email address and a "
     "password of at least 10 characters, then open the confirmation link we email you within 24 hours. You can "
     "also create an account at checkout by ticking Save my details."),
    ("account", "Can I order without an account?",
     "Yes, choose Check out as guest. You still get order and tracking emails, but you need an account to see your "
     "order history, download invoices and start returns online. If you create an account later with the same email "
     "address, your guest orders are added to it automatically."),
    ("account", "How do I delete my account?",
     "Go to Account settings > Privacy > Delete account and confirm with your password. Open orders and returns "
     "must be completed first. Your profile is deleted within 30 days; invoices are kept for 10 years because tax "
     "law requires it. If you cannot sign in, write to privacy@example.com from the address on the account."),
    ("account", "How do I change my name, email address or phone number?",
     "Sign in and open Account settings > Personal details. A new name or phone number is saved immediately; a new "
     "email address replaces the old one once you open the confirmation link we send to it. Orders that have "
     "already shipped keep the details they were placed with."),
    ("account", "How do I add or change a shipping address?",
     "Open Account settings > Addresses to add an address, edit one or choose Set as default. To change the "
     "address of an order that has not shipped yet, open the order and choose Change address, or contact customer "
     "service. Orders that have shipped cannot be redirected."),
    ("account", "How do I switch between a personal and a business account?",
     "Open Account settings > Account type and choose Business, then enter your company name and VAT number. "
     "Business invoices show both, and prices are listed without VAT. You can switch back to a personal account at "
     "any time; invoices already issued do not change."),
    ("account", "Can I merge two accounts or switch to another one?",
     "Accounts cannot be merged, but you can sign out (Account menu > Sign out) and sign in with the other email "
     "address. If you want the order history of both in one account, contact customer service from both email "
     "addresses and we will move the orders for you."),
    ("account", "How do the bronze, silver and gold tiers work?",
     "Every account starts at bronze. Spending 500.00 USD within 12 months moves you to silver, which adds free "
     "Express shipping on orders over 100.00 USD. Spending 1,500.00 USD moves you to gold, with free Express "
     "shipping on every order and early access to sales. Tiers are reviewed every month."),
    ("password", "I forgot my password. How do I reset it?",
     "Choose Sign in > Forgot password, enter the email address of your account and open the link we send you. The "
     "link is valid for 60 minutes. If the email has not arrived after 10 minutes, check your spam folder and make "
     "sure you typed the address you registered with."),
    ("password", "The password reset link does not work.",
     "Reset links expire after 60 minutes and work only once. Request a new link and open it in the same browser "
     "you requested it from. If it still fails, clear our site's cookies or contact customer service, who can send "
     "a new link once they have verified your identity."),
    ("password", "My account is locked after too many sign-in attempts.",
     "After 5 failed attempts we lock the account for 15 minutes to protect it. Wait, then sign in again or reset "
     "your password. If the attempts were not yours, reset your password and turn on two-step verification under "
     "Account settings > Security."),
    ("password", "How do I turn on two-step verification?",
     "Open Account settings > Security > Two-step verification and choose an authenticator app or text messages. "
     "Keep the backup codes we show you somewhere safe: each one signs you in once if you lose your phone."),
    ("registration", "I did not receive the confirmation email after registering.",
     "Wait up to 10 minutes and check your spam or promotions folder. On the sign-in page, choose Resend "
     "confirmation email; confirmation links are valid for 24 hours. Company mail filters sometimes hold our "
     "emails back, so add no-reply@example.com to your contacts."),
    ("registration", "Registration says my email address is already in use.",
     "An account already exists for that address, perhaps from an earlier guest order. Use Forgot password to set "
     "a password for it. If you think someone else registered with your address, contact customer service and we "
     "will look into it."),
    ("registration", "Why is my password rejected when I register?",
     "Passwords need at least 10 characters and must not be one of the commonly used passwords on our block list. "
     "Spaces and any characters are allowed, so a phrase of three or four words works well."),
    ("orders", "How do I track my order?",
     "Open Orders in your account and choose the order: once it has shipped you see the carrier, the tracking "
     "number and the estimated delivery date. We also email the tracking link when the parcel leaves our "
     "warehouse. The first scan can take up to 24 hours to appear."),
    ("orders", "Can I change an order after placing it?",
     "Orders that have not shipped yet can be changed: open the order and choose Change items or Change address, or "
     "contact customer service. Once an order has shipped it cannot be changed, but you can return what you no "
     "longer want."),
    ("orders", "How do I cancel an order and does it cost anything?",
     "Open the order and choose Cancel order. Cancelling is free until the order ships. A shipped order can no "
     "longer be cancelled; refuse the delivery or return it instead, and a 9.95 USD handling fee is deducted when a "
     "shipped order comes back unopened. Made-to-order furniture costs 50.00 USD to cancel after 48 hours."),
    ("orders", "How do I place an order?",
     "Add the products to your basket, open the basket and choose Check out. Sign in or continue as a guest, pick a "
     "shipping address, a delivery method and a payment method, then choose Place order. You receive a "
     "confirmation email with your order number straight away."),
    ("delivery", "What delivery options do you offer?",
     "Standard (3 to 5 business days), Express (1 to 2 business days), Next-Day in the United States and the United "
     "Kingdom, free Store Pickup in the United States, the United Kingdom and the EU, and International Economy (7 "
     "to 14 business days) for Australia and the rest of the world."),
    ("delivery", "How much does shipping cost?",
     "Standard costs 4.99 USD and is free over 50.00 USD; Express costs 12.99 USD and is free over 150.00 USD; "
     "Next-Day costs 19.99 USD; Store Pickup is free; International Economy costs 24.99 USD and is free over "
     "200.00 USD. Furniture is delivered by a two-person team at no extra charge."),
    ("delivery", "How long does delivery take?",
     "Orders placed before 2 pm UTC on a business day leave the same day. Standard delivery then takes 3 to 5 "
     "business days, Express 1 to 2, Next-Day arrives the next business day and International Economy takes 7 to 14. "
     "Furniture arrives within 7 to 14 business days."),
    ("delivery", "My parcel is late. What should I do?",
     "Check the tracking link first: carriers sometimes hold a parcel at a depot. If the estimated delivery date "
     "has passed by more than 2 business days, contact customer service. We open an investigation with the carrier "
     "and, if the parcel is lost, send a replacement or refund you."),
    ("delivery", "Can I pick up my order in a store?",
     "Yes, choose Store Pickup at checkout in the United States, the United Kingdom or the EU. We email you when the "
     "order is ready, usually within 2 to 4 business days. Bring the email and a photo ID; we keep the order for 10 "
     "days."),
    ("delivery", "Do you ship internationally?",
     "We deliver to the United States, Canada, the United Kingdom and the EU with all our methods, and to Australia "
     "and the rest of the world with Express or International Economy. Import duties outside these regions are "
     "paid by the recipient."),
    ("returns", "How do I return an item?",
     "Open the order in your account and choose Return items, or ask customer service. Most items can be returned "
     "within 30 days of delivery, unused and in their original packaging. We email a prepaid return label within "
     "one business day; drop the parcel at any SwiftPost or ParcelWay point."),
    ("returns", "Do some products have a different return period?",
     "Yes. Smartphones can be returned within 14 days and must be reset first; sports gear within 45 days; running "
     "shoes within 60 days, even after running in them; furniture within 30 days with a 49.00 USD collection fee, "
     "and Oakhaven furniture has a 100-night trial. Headphones and smartwatches need an unbroken hygiene seal. The "
     "product page always shows the rule that applies."),
    ("returns", "Is return shipping free?",
     "Yes, for returns within the return period from the United States, Canada, the United Kingdom and the EU: we "
     "send a prepaid label. Furniture collection costs 49.00 USD unless the item arrived damaged. From other "
     "countries you pay the return shipping unless the item is faulty."),
    ("returns", "Can I exchange an item for another size or colour?",
     "Return the item for a refund and place a new order for the size or colour you want; that way you get the "
     "new one as quickly as possible and it is never held up by the return."),
    ("refunds", "When will I get my refund?",
     "We inspect returns within 2 business days of arrival and then refund the original payment method. Card, "
     "PayPal and mobile wallet refunds usually appear within 5 to 10 business days, bank transfers within 10. Gift "
     "card payments are refunded to a new gift card."),
    ("refunds", "How can I check the status of my refund?",
     "Open the returned order in your account: it shows whether the return has arrived and when the refund was "
     "issued. We also email you when the refund is sent. If it has not reached your account 10 business days after "
     "that email, contact your bank with the reference number from the email, or ask customer service."),
    ("payment", "Which payment methods do you accept?",
     "Cards (Visa, Mastercard, American Express), PayPal, mobile wallets, bank transfer and gift cards everywhere; "
     "Pay Later in the United States and the United Kingdom; cash on delivery in Germany, Austria and the "
     "Netherlands."),
    ("payment", "My payment was declined. What can I do?",
     "Check that the card number, expiry date and billing address match what your bank has, and approve the "
     "payment in your banking app if it asks for 3-D Secure confirmation. Daily spending limits also cause "
     "declines. Try again or choose another method; we never see or store your full card number, so only your bank "
     "can tell you the exact reason."),
    ("payment", "I was charged twice for one order.",
     "Usually the second amount is a pre-authorisation hold that disappears within 3 to 5 business days. If both "
     "charges are still there after 5 business days, contact customer service with your order number and we refund "
     "the duplicate within 2 business days."),
    ("payment", "How does paying by bank transfer work?",
     "After you place the order we show and email our bank details. Use your order number as the payment "
     "reference. The order ships as soon as the money arrives, usually within 1 to 3 business days; orders still "
     "unpaid after 7 days are cancelled automatically."),
    ("payment", "How do I use a promotion code?",
     "Enter the code in the Promotion code field in your basket before you check out. One code per order; the "
     "discount shows before you pay. Codes cannot be added to an order after it has been placed, and each code is "
     "valid only between its start and end dates."),
    ("invoices", "Where can I find my invoice?",
     "We email the invoice as a PDF when your order ships. You can also open the order in your account and choose "
     "Download invoice at any time."),
    ("invoices", "How do I get a copy of an invoice?",
     "Open the order and choose Download invoice, or Email invoice to send a copy to your address. For a guest "
     "order, use the link in your shipping confirmation email or ask customer service for a copy."),
    ("invoices", "Can I get an invoice with my company name and VAT number?",
     "Yes. Switch to a business account, or add your company details at checkout, before you order. For an order "
     "already placed, contact customer service within 30 days of delivery and we reissue the invoice with your "
     "company details."),
    ("newsletter", "How do I subscribe to the newsletter?",
     "Enter your email address at the bottom of any page, or tick Newsletter under Account settings > "
     "Communication preferences, then confirm the link we send. New subscribers get the code WELCOME10 for 10% off "
     "their first order. We send at most two emails a week."),
    ("newsletter", "How do I unsubscribe from the newsletter?",
     "Use the Unsubscribe link at the bottom of any newsletter, or untick Newsletter under Account settings > "
     "Communication preferences. It takes effect immediately. Order and shipping emails keep coming because they "
     "are part of your purchase."),
    ("contact", "How can I contact customer service?",
     "Chat with us here at any time. Our team answers the phone on +1 555-0100 from Monday to Friday, 8 am to 8 pm "
     "UTC, and on Saturday from 9 am to 5 pm UTC. Emails to support@example.com are answered within 24 hours."),
    ("contact", "How do I speak to a person?",
     "Ask the chat for a human agent at any time and we connect you to one during opening hours (Monday to Friday, "
     "8 am to 8 pm UTC, Saturday 9 am to 5 pm UTC); outside them we call or email you back the next working day. "
     "You can also phone +1 555-0100."),
    ("warranty", "How do I make a warranty claim?",
     "Contact customer service with your order number and a short description or photo of the fault. We send a "
     "prepaid label or arrange a collection; a repair or replacement usually takes up to 10 business days, and if "
     "neither is possible we refund you."),
    ("warranty", "How long is the warranty on my product?",
     "Every product has at least 12 months. Electronics have 24 months, cameras and all Kestrel products 36 months, "
     "and Northwind Outfitters jackets and bags 5 years. Where a product page shows its own warranty, that one "
     "applies."),
    ("privacy", "What personal data do you keep, and how do I get a copy?",
     "We keep your name, contact details, addresses and order history to fulfil orders and provide support. We "
     "never sell it. Write to privacy@example.com to ask for a copy or for deletion; we reply within 30 days."),
    ("reviews", "How do I leave a review?",
     "Open the order in your account and choose Write a review next to the product; reviews open 3 days after "
     "delivery. We publish every review that follows our guidelines, good or bad, usually within 48 hours."),
    ("complaints", "How do I make a complaint?",
     "Tell us in the chat, by email to support@example.com or by phone, with your order number if there is one. A "
     "team lead replies within 2 business days and, if we got something wrong, puts it right."),
)

# --------------------------------------------------------------------------------------------
# People and places for customers and addresses (reserved fictional phone ranges, example.* mail).
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Country:
    name: str
    region: str
    currency: str
    weight: int
    cities: tuple[str, ...]
    streets: tuple[str, ...]
    postcode: str  # '#' a digit, 'A' a letter
    phone: str


COUNTRIES: tuple[Country, ...] = (
    Country("United States", "US", "USD", 35, ("Portland", "Austin", "Denver", "Chicago", "Boston", "Seattle"),
            ("Maple Avenue", "Oak Street", "Pine Road", "Lakeview Drive", "Cedar Lane"), "#####", "+1 {a}-555-01{b}"),
    Country("Canada", "CA", "USD", 8, ("Toronto", "Vancouver", "Montréal", "Calgary"),
            ("King Street West", "Rue Sainte-Catherine", "Granville Street"), "A#A #A#", "+1 {a}-555-01{b}"),
    Country("United Kingdom", "UK", "USD", 12, ("London", "Leeds", "Bristol", "Manchester", "Edinburgh"),
            ("Harbour Street", "Mill Lane", "Station Road", "Victoria Terrace"), "AA# #AA", "+44 7700 900{c}"),
    Country("Ireland", "EU", "EUR", 3, ("Dublin", "Cork", "Galway"), ("Grafton Street", "Shop Street"),
            "A## A###", "+353 85 555 0{c}"),
    Country("Germany", "EU", "EUR", 10, ("Berlin", "München", "Hamburg", "Köln"),
            ("Lindenstraße", "Hauptstraße", "Gartenweg", "Schillerplatz"), "#####", "+49 152 5550 {d}"),
    Country("France", "EU", "EUR", 7, ("Paris", "Lyon", "Nantes", "Toulouse"),
            ("Rue de la République", "Avenue Jean Jaurès", "Rue Victor Hugo"), "#####", "+33 6 55 50 {e}"),
    Country("Netherlands", "EU", "EUR", 5, ("Amsterdam", "Utrecht", "Rotterdam"),
            ("Prinsengracht", "Oudegracht", "Witte de Withstraat"), "#### AA", "+31 6 5550 {d}"),
    Country("Spain", "EU", "EUR", 5, ("Madrid", "Barcelona", "València"),
            ("Calle Mayor", "Carrer de Mallorca", "Avenida de la Constitución"), "#####", "+34 655 50 {e}"),
    Country("Italy", "EU", "EUR", 5, ("Milano", "Roma", "Torino", "Bologna"),
            ("Via Roma", "Corso Garibaldi", "Via Dante"), "#####", "+39 355 550 {d}"),
    Country("Austria", "EU", "EUR", 3, ("Wien", "Graz", "Salzburg"), ("Mariahilfer Straße", "Getreidegasse"),
            "####", "+43 664 5550 {d}"),
    Country("Australia", "AU", "USD", 7, ("Sydney", "Melbourne", "Brisbane"),
            ("George Street", "Collins Street", "Queen Street"), "####", "+61 491 570 {c}"),
)

FIRST_NAMES = ("Emma", "Liam", "Olivia", "Noah", "Ava", "Mateo", "Sofia", "Lucas", "Mia", "Ethan", "Chloé",
               "Jonas", "Zoë", "Aarav", "Priya", "Hiroshi", "Yuki", "Søren", "Ingrid", "José", "Lucía", "Giulia",
               "Marco", "Fatima", "Omar", "Amara", "Kwame", "Niamh", "Seán", "Leon", "Hannah", "Grace", "Daniel",
               "Mei", "Wei", "Aisha", "Elif", "Mikael", "Ana", "Tomás")
LAST_NAMES = ("Smith", "Johnson", "García", "Müller", "Rossi", "Dubois", "Jansen", "Kowalski", "Nguyen", "Kim",
              "Patel", "Tanaka", "O'Brien", "Murphy", "Schneider", "Bianchi", "Martin", "Lefèvre", "de Vries",
              "Andersen", "Lindqvist", "Fernández", "Okafor", "Mensah", "Haddad", "Chen", "Wang", "Brown",
              "Wilson", "Taylor", "Novak", "Horvat", "Silva", "Costa", "Yılmaz", "Ivanova", "Walsh", "Becker",
              "Moreau", "Sato")
_TIERS = (("bronze", 60), ("silver", 30), ("gold", 10))
_TIER_ACTIVITY = MappingProxyType({"bronze": 1, "silver": 2, "gold": 4})

# --------------------------------------------------------------------------------------------
# Orders: which state an order is in depends on how long ago it was placed.
# --------------------------------------------------------------------------------------------

ORDER_STATUSES = ("placed", "paid", "shipped", "delivered", "cancelled", "returned")
_STATUS_BY_AGE: tuple[tuple[float, tuple[tuple[str, int], ...]], ...] = (
    (1.0, (("placed", 40), ("paid", 45), ("cancelled", 15))),
    (2.0, (("paid", 20), ("shipped", 70), ("cancelled", 10))),
    (5.0, (("shipped", 75), ("delivered", 15), ("cancelled", 10))),
    (10.0, (("shipped", 15), ("delivered", 72), ("returned", 8), ("cancelled", 5))),
    (math.inf, (("delivered", 78), ("returned", 10), ("cancelled", 12))),
)
# Ages (days) at which a status can still be true; used when a small run lacks a status.
_FEASIBLE_AGE = MappingProxyType({"placed": (0.0, 2.0), "paid": (0.0, 3.0), "shipped": (0.5, 12.0), "delivered": (1.5, math.inf),
                 "returned": (4.0, math.inf), "cancelled": (0.0, math.inf)})
_HISTORY_DAYS = 365.0
_RECENT_DAYS = 14.0  # a denser recent window, so there are always orders on their way to track
_ITEMS_PER_ORDER = ((1, 55), (2, 28), (3, 12), (4, 5))
_DISCOUNTS = ("0.05", "0.10", "0.15", "0.20", "0.25", "0.30")
_CENT = Decimal("0.01")

FILE_COLUMNS: MappingProxyType[str, tuple[str, ...]] = MappingProxyType({
    "categories.csv": ("name", "parent", "description"),
    "brands.csv": ("name", "country"),
    "suppliers.csv": ("supplier_id", "name", "country", "phone"),
    "products.csv": ("sku", "name", "brand", "category", "supplier_id", "price", "currency", "stock", "description",
                     "warranty_months", "rating", "status", "attributes"),
    "customers.csv": ("customer_id", "name", "email", "phone", "city", "country", "tier"),
    "shipping_methods.csv": ("name", "min_days", "max_days", "cost", "free_over", "regions"),
    "payment_methods.csv": ("name", "description"),
    "orders.csv": ("order_id", "customer_id", "status", "placed_at", "shipped_at", "delivered_at", "eta", "carrier",
                   "tracking_number", "shipping_method", "payment_method", "ship_to", "total", "currency"),
    "order_items.csv": ("order_id", "sku", "quantity", "unit_price", "discount"),
    "promotions.csv": ("code", "description", "discount_percent", "starts", "ends", "applies_to"),
    "policies.jsonl": ("policy_id", "type", "title", "text", "days", "fee", "applies_to"),
    "faqs.jsonl": ("question", "answer", "topic"),
})
FIRST_ORDER_ID = 10001
PROGRESS_THRESHOLD = 10_000

# --------------------------------------------------------------------------------------------
# Writing helpers
# --------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _atomic(path: Path) -> Iterator[IO[str]]:
    """Write beside the target and rename, so an interrupted run never leaves a half file that an
    import would take for a complete one."""
    tmp = path.with_name(path.name + ".part")
    try:
        with tmp.open("w", encoding="utf-8", newline="") as fh:
            yield fh
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def _csv_file(out_dir: Path, name: str) -> Iterator[Any]:
    with _atomic(out_dir / name) as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(FILE_COLUMNS[name])
        yield writer


def _write_csv(out_dir: Path, name: str, rows: list[tuple[Any, ...]]) -> int:
    with _csv_file(out_dir, name) as writer:
        writer.writerows(rows)
    return len(rows)


def _write_jsonl(out_dir: Path, name: str, rows: list[dict[str, Any]]) -> int:
    with _atomic(out_dir / name) as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    return len(rows)


def _money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def _lower_words(text: str) -> str:
    """Lower-case a title for use mid-sentence, but keep acronyms and units ("USB-C", "30W", "GaN")."""
    def word(w: str) -> str:
        return "-".join(p.lower() if p[1:].islower() and p[:1].isupper() else p for p in w.split("-"))
    return " ".join(word(w) for w in text.split(" "))


# "a armchair", "a 8.3-inch", "a LED" -> "an ..."; "a USB-C" stays.
_AN = re.compile(r"\b([Aa]) (?=[aeiou]|[AEIO][a-z]|8|11\b|18\b|LED\b|LCD\b|MIP\b|AMOLED\b)")


def _capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")


def _weighted(rng: random.Random, pairs: tuple[tuple[Any, int], ...] | list[tuple[Any, int]]) -> Any:
    return rng.choices([p[0] for p in pairs], weights=[p[1] for p in pairs])[0]


def _fill_pattern(rng: random.Random, pattern: str) -> str:
    return "".join(str(rng.randrange(10)) if c == "#" else chr(65 + rng.randrange(26)) if c == "A" else c
                   for c in pattern)


# --------------------------------------------------------------------------------------------
# Products
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _LinePlan:
    """One model line before it is expanded into variants."""

    category: int
    brand: int
    line: str  # how shoppers name it: "Aurora X2", "NA-700X", "Clear Case for Nova 5"
    noun: str  # "Wireless Headphones"; empty for accessories, whose line already says what they are
    options: tuple[tuple[str, ...], ...]
    price: float | None = None  # anchors fix their price; others draw one
    target: str = ""  # compatible_with: the full device line name
    anchor: bool = False


@dataclass
class ProductIndex:
    """What the orders need to know about each product, a few bytes per product.

    A sku is derived from (brand, category, index) instead of being stored, which is what keeps a
    million products cheap."""

    brand: bytearray = field(default_factory=bytearray)
    category: bytearray = field(default_factory=bytearray)
    cents: array = field(default_factory=lambda: array("q"))
    eur: bytearray = field(default_factory=bytearray)
    companion: array = field(default_factory=lambda: array("q"))  # an accessory (or device) bought with it, or -1
    by_category: dict[int, array] = field(default_factory=dict)
    anchors: dict[str, int] = field(default_factory=dict)  # anchor line -> index of its first variant

    def __len__(self) -> int:
        return len(self.cents)

    def sku(self, i: int) -> str:
        return f"{BRANDS[self.brand[i]].code}-{CATEGORIES[self.category[i]].code}-{i + 1:06d}"

    def anchor_sku(self, line: str, variant: int) -> str | None:
        first = self.anchors.get(line)
        if first is None or first + variant >= len(self):
            return None
        return self.sku(first + variant)


class _Catalog:
    """The product stream of one run: draws model lines, expands them into variants and writes each
    variant as soon as it exists. Holds only bounded lookups plus the ProductIndex."""

    def __init__(self, rng: random.Random, writer: Any, limit: int, progress: tqdm) -> None:
        self.rng = rng
        self.writer = writer
        self.limit = limit
        self.progress = progress
        self.index = ProductIndex()
        self.cat_ix = {c.name: i for i, c in enumerate(CATEGORIES)}
        self.brand_ix = {b.name: i for i, b in enumerate(BRANDS)}
        self.makers = {c.name: [i for i, b in enumerate(BRANDS) if c.name in b.categories] for c in CATEGORIES}
        self.used_names: set[tuple[int, str]] = set()  # bounded: words x suffixes per brand
        self.code_counter: dict[int, int] = {}
        self.memo: dict[Any, Any] = {}  # bounded: JSON fragments and lower-cased vocabulary
        self.suppliers = {d: [s for s in SUPPLIERS if s.domain == d] for d in {s.domain for s in SUPPLIERS}}
        for i in range(len(CATEGORIES)):
            self.index.by_category[i] = array("q")

    # -- top level -------------------------------------------------------------------------
    def build(self) -> ProductIndex:
        """Anchors first, then one line per category (so every category and accessory type exists even
        in a small store), then lines drawn by weight until the requested count is reached."""
        for anchor in ANCHORS:
            if self.full:
                break
            self._device(self._anchor_plan(anchor))
        devices = [i for i, c in enumerate(CATEGORIES) if c.line_weight]
        for ci in devices:
            if self.full:
                break
            self._device(self._random_plan(ci))
        weights = [CATEGORIES[i].line_weight for i in devices]
        while not self.full:
            self._device(self._random_plan(self.rng.choices(devices, weights)[0]))
        return self.index

    @property
    def full(self) -> bool:
        return len(self.index) >= self.limit

    # -- planning --------------------------------------------------------------------------
    def _anchor_plan(self, a: Anchor) -> _LinePlan:
        self.used_names.add((self.brand_ix[a.brand], a.line))
        return _LinePlan(self.cat_ix[a.category], self.brand_ix[a.brand], a.line, a.noun, a.options, a.price,
                         anchor=True)

    def _random_plan(self, ci: int) -> _LinePlan:
        cat, rng = CATEGORIES[ci], self.rng
        brand = rng.choice(self.makers[cat.name])
        noun = rng.choice(cat.nouns)
        return _LinePlan(ci, brand, self._line_name(cat, brand), noun, self._options(cat))

    def _options(self, cat: Category) -> tuple[tuple[str, ...], ...]:
        chosen = []
        for dim in cat.dims:
            k = self.rng.randint(dim.pick[0], min(dim.pick[1], len(dim.options)))
            if dim.contiguous:
                start = self.rng.randrange(len(dim.options) - k + 1)
                chosen.append(dim.options[start:start + k])
            else:
                picked = sorted(self.rng.sample(range(len(dim.options)), k))
                chosen.append(tuple(dim.options[j] for j in picked))
        return tuple(chosen)

    def _line_name(self, cat: Category, brand: int) -> str:
        """A word plus a generation ("Aurora X2"), unique per brand; or a model number, which a
        per-brand counter keeps unique and four digits long so it never meets an anchor's."""
        for _ in range(6):
            if self.rng.random() < cat.code_share:
                break
            name = f"{self.rng.choice(cat.words)} {self.rng.choice(cat.suffixes)}".strip()
            if (brand, name) not in self.used_names:
                self.used_names.add((brand, name))
                return name
        n = self.code_counter.get(brand, 1000 + self.rng.randrange(0, 500, 10)) + self.rng.randrange(10, 60, 10)
        self.code_counter[brand] = n
        return f"{BRANDS[brand].code}-{n}{self.rng.choice(('', '', 'X', 'S', 'E', 'R', 'BT', 'N'))}"

    # -- emitting --------------------------------------------------------------------------
    def _device(self, plan: _LinePlan) -> None:
        """Write a device line, then the accessory lines made for it, and remember which accessory goes
        with which device so that orders can pair them."""
        devices = self._emit(plan)
        if not devices:
            return
        device_cat = CATEGORIES[plan.category].name
        target = f"{BRANDS[plan.brand].name} {plan.line}"
        used_styles: set[tuple[int, str]] = set()
        for spawn in SPAWNS:
            if spawn.device != device_cat or self.full:
                continue
            acc_ci = self.cat_ix[spawn.accessory]
            first_of_kind = not self.index.by_category[acc_ci]
            if not first_of_kind and self.rng.random() >= spawn.probability:
                continue
            accessory = self._accessory_plan(plan, spawn, acc_ci, target, used_styles)
            if accessory is not None:
                self._pair(devices, self._emit(accessory))

    def _accessory_plan(self, device: _LinePlan, spawn: Spawn, acc_ci: int, target: str,
                        used: set[tuple[int, str]]) -> _LinePlan | None:
        makers = self.makers[spawn.accessory]
        own = device.brand in makers and self.rng.random() < 0.5
        brand = device.brand if own else self.rng.choice(makers)
        style = self.rng.choice(spawn.styles)
        if (brand, style) in used:
            return None
        used.add((brand, style))
        short = device.line if brand == device.brand else target
        return _LinePlan(acc_ci, brand, f"{style} for {short}", style, self._options(CATEGORIES[acc_ci]),
                         target=target)

    def _pair(self, devices: range, accessories: range) -> None:
        if not accessories:
            return
        companion, rng = self.index.companion, self.rng
        for i in devices:
            if companion[i] < 0 or rng.random() < 0.3:
                companion[i] = rng.randrange(accessories.start, accessories.stop)
        for j in accessories:
            companion[j] = rng.randrange(devices.start, devices.stop)

    def _emit(self, plan: _LinePlan) -> range:
        """Expand a line into its variants and write them; returns the product indices written.

        Everything shared by the variants (specs, description, JSON fragments) is computed once
        per line, which is what keeps a million products within a minute."""
        rng, cat, brand = self.rng, CATEGORIES[plan.category], BRANDS[plan.brand]
        attrs = self._line_attrs(cat, plan.noun)
        combos = list(cartesian(*plan.options))[: cat.max_variants] if plan.options else [()]
        deltas = [sum(d.step * d.options.index(v) for d, v in zip(cat.dims, combo, strict=True)) for combo in combos]
        base = plan.price if plan.price is not None else rng.uniform(*cat.price)
        eur = not plan.anchor and brand.country in _EURO_COUNTRIES and rng.random() < 0.3
        supplier = self._supplier(plan.brand)
        rating = self._rating()
        warranty = "" if plan.anchor or rng.random() >= cat.warranty[0] else str(rng.choice(cat.warranty[1]))
        description = self._description(cat, plan, attrs)
        line_discontinued = not plan.anchor and rng.random() < 0.02
        whole = rng.random() < 0.12  # some lines are priced in whole units: 149.00, not 149.99
        title = f"{brand.name} {plan.line}" if plan.target else f"{brand.name} {plan.line} {plan.noun}"
        shared = dict(attrs, compatible_with=plan.target) if plan.target else attrs
        head = '{"model_line": ' + json.dumps(plan.line, ensure_ascii=False)
        tail = json.dumps(shared, ensure_ascii=False)[1:-1]
        fragments = {(d.key, v): self._fragment(d, v) for d, values in zip(cat.dims, plan.options, strict=True)
                     for v in values}
        currency = "EUR" if eur else "USD"
        ix, write = self.index, self.writer.writerow
        by_category = ix.by_category[plan.category]
        start = len(ix)
        i = start
        for combo, delta in zip(combos, deltas, strict=True):
            if i >= self.limit:
                break
            if plan.anchor:
                cents = round((plan.price + delta - deltas[0]) * 100)
            else:
                cents = _nice_cents(base + delta, whole)
            discontinued = line_discontinued or rng.random() < 0.015
            parts = [fragments[d.key, v] for d, v in zip(cat.dims, combo, strict=True)]
            attributes = ", ".join([head, *(p[0] for p in parts), tail]) + "}" if tail else \
                ", ".join([head, *(p[0] for p in parts)]) + "}"
            name = f"{title}, {', '.join(p[1] for p in parts)}" if parts else title
            ix.brand.append(plan.brand)
            ix.category.append(plan.category)
            ix.cents.append(cents)
            ix.eur.append(eur)
            ix.companion.append(-1)
            by_category.append(i)
            write((ix.sku(i), name, brand.name, cat.name, supplier, _money(cents), currency, self._stock(discontinued),
                   description, warranty, rating, "discontinued" if discontinued else "active", attributes))
            i += 1
        if plan.anchor and i > start:
            ix.anchors.setdefault(plan.line, start)
        self.progress.update(i - start)
        return range(start, i)

    def _fragment(self, dim: Dim, value: str) -> tuple[str, str]:
        """The JSON member and the name label of one variant value, memoised per run (a few hundred)."""
        key = (dim.key, value, dim.label)
        cached = self.memo.get(key)
        if cached is None:
            cached = self.memo[key] = (f"{json.dumps(dim.key)}: {json.dumps(value, ensure_ascii=False)}",
                                       dim.label.format(value))
        return cached

    def _lower(self, text: str) -> str:
        cached = self.memo.get(text)
        if cached is None:
            cached = self.memo[text] = _lower_words(text)
        return cached

    # -- per-line details ------------------------------------------------------------------
    def _line_attrs(self, cat: Category, noun: str) -> dict[str, Any]:
        specs = {a.key: a for a in cat.attrs}
        for n, overrides in cat.noun_attrs:
            if n == noun:
                specs.update({a.key: a for a in overrides})
        return {k: self.rng.choice(a.values) for k, a in specs.items()}

    def _description(self, cat: Category, plan: _LinePlan, attrs: dict[str, Any]) -> str:
        context = {k: v for k, v in attrs.items()}
        context.update({f"{k}_l": self._lower(v) for k, v in attrs.items() if isinstance(v, str)})
        context.update(noun_l=self._lower(plan.noun), line=plan.line, brand=BRANDS[plan.brand].name,
                       target=plan.target)
        text = _capitalised(self.rng.choice(cat.sentences).format_map(context))
        if cat.extras and self.rng.random() < 0.6:
            text += " " + _capitalised(self.rng.choice(cat.extras).format_map(context))
        return _AN.sub(r"\1n ", text)

    def _supplier(self, brand: int) -> str:
        domain = CATEGORIES[self.cat_ix[BRANDS[brand].categories[0]]].parent
        options = self.suppliers[domain]
        if self.rng.random() < 0.1:
            return self.rng.choice(options).supplier_id
        return options[brand % len(options)].supplier_id

    def _rating(self) -> str:
        r = self.rng.random()
        if r < 0.04:
            return ""  # no reviews yet
        value = self.rng.uniform(1.5, 3.2) if r < 0.07 else self.rng.gauss(4.2, 0.45)
        return f"{min(5.0, max(1.0, value)):.1f}"

    def _stock(self, discontinued: bool) -> int:
        r = self.rng.random()
        if discontinued:
            return 0 if r < 0.85 else self.rng.randint(1, 5)
        if r < 0.07:
            return 0
        if r < 0.19:
            return self.rng.randint(1, 5)
        if r < 0.79:
            return self.rng.randint(6, 100)
        return self.rng.randint(101, 800)



def _nice_cents(price: float, whole: bool) -> int:
    """Shop prices: 14.99, 149.00, 249.99, 1,199.00 rather than 247.31."""
    if price < 100:
        return round(price) * 100 if whole else math.floor(price) * 100 + 99
    step = 10 if price < 1000 else 50
    return max(1, round(price / step)) * step * 100 - (0 if whole else 1)


def _write_products(out_dir: Path, rng: random.Random, limit: int) -> ProductIndex:
    with _csv_file(out_dir, "products.csv") as writer, \
            tqdm(total=limit, desc="products", unit="product", disable=limit <= PROGRESS_THRESHOLD) as bar:
        return _Catalog(rng, writer, limit, bar).build()


# --------------------------------------------------------------------------------------------
# Customers
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Customer:
    customer_id: str
    country: Country
    city: str
    address: str  # street line
    weight: int  # how often they order


def _postal_line(rng: random.Random, country: Country, city: str) -> str:
    return f"{city} {_fill_pattern(rng, country.postcode)}"


def _phone(rng: random.Random, country: Country) -> str:
    return country.phone.format(a=rng.choice(("206", "312", "415", "512", "617", "720")), b=f"{rng.randrange(100):02d}",
                                c=f"{rng.randrange(1000):03d}", d=f"{rng.randrange(10000):04d}",
                                e=f"{rng.randrange(100):02d} {rng.randrange(100):02d}")


def _write_customers(out_dir: Path, rng: random.Random, count: int) -> list[_Customer]:
    """Customers stay in memory (a few hundred bytes each) because orders pick among them by activity."""
    customers = []
    country_weights = [(c, c.weight) for c in COUNTRIES]
    with _csv_file(out_dir, "customers.csv") as writer:
        for n in range(1, count + 1):
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            country = _weighted(rng, country_weights)
            city = rng.choice(country.cities)
            tier = _weighted(rng, _TIERS)
            local = _ascii(f"{first}.{last}").lower().replace(" ", "").replace("'", "")
            email = f"{local}{n}@{rng.choice(('example.com', 'example.org', 'example.net'))}"
            cid = f"C{n:05d}"
            street = f"{rng.randint(1, 240)} {rng.choice(country.streets)}"
            customers.append(_Customer(cid, country, city, f"{street}, {_postal_line(rng, country, city)}",
                                       _TIER_ACTIVITY[tier]))
            writer.writerow((cid, f"{first} {last}", email, _phone(rng, country), city, country.name, tier))
    return customers


# --------------------------------------------------------------------------------------------
# Orders
# --------------------------------------------------------------------------------------------


def _ages(rng: random.Random, count: int) -> array:
    """Days between placing each order and `today`, oldest first, so order ids rise with time.

    Stratified rather than sorted samples: no sort, and at least 14 orders fall in the recent
    window so the last ones are always young enough to be placed or paid."""
    recent = min(count, max(14, round(count * 0.1)))
    old = count - recent
    ages = array("d")
    for k in range(old):
        ages.append(_HISTORY_DAYS - (k + rng.random()) * (_HISTORY_DAYS - _RECENT_DAYS) / old)
    for j in range(recent):
        ages.append(_RECENT_DAYS - (j + rng.random()) * _RECENT_DAYS / recent)
    return ages


def _statuses(rng: random.Random, ages: array) -> bytearray:
    """A status per order drawn from its age; then each status missing from a small run is given
    to an order whose age allows it and whose own status occurs more than once."""
    statuses = bytearray()
    for age in ages:
        for max_age, table in _STATUS_BY_AGE:
            if age < max_age:
                statuses.append(ORDER_STATUSES.index(_weighted(rng, table)))
                break
    counts = [statuses.count(s) for s in range(len(ORDER_STATUSES))]
    for s, name in enumerate(ORDER_STATUSES):
        if counts[s]:
            continue
        lo, hi = _FEASIBLE_AGE[name]
        candidates = [k for k, age in enumerate(ages) if lo <= age < hi and counts[statuses[k]] > 1]
        if candidates:
            k = rng.choice(candidates)
            counts[statuses[k]] -= 1
            statuses[k] = s
            counts[s] += 1
    return statuses


@dataclass(frozen=True)
class _Timeline:
    placed_at: str
    shipped_at: str = ""
    delivered_at: str = ""
    eta: str = ""


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(int(ts), dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _timeline(rng: random.Random, status: str, age: float, now: dt.datetime, method: ShippingMethod) -> _Timeline:
    """Dates that agree with the status: nothing after placing for placed/paid/cancelled, a ship date
    and an ETA not in the past for shipped, ship and delivery dates before `today` otherwise."""
    now_ts = now.timestamp()
    placed = now_ts - age * 86400
    if status in ("placed", "paid", "cancelled"):
        return _Timeline(_iso(placed))
    window = now_ts - placed
    if status == "shipped":
        shipped = placed + max(600.0, min(rng.uniform(0.1, 1.2) * 86400, window * 0.9))
        eta = (dt.datetime.fromtimestamp(shipped, dt.UTC) + dt.timedelta(days=rng.randint(method.min_days,
                                                                                           method.max_days))).date()
        if eta < now.date():  # running late: the carrier has pushed the estimate
            eta = now.date() + dt.timedelta(days=rng.randint(0, 2))
        return _Timeline(_iso(placed), _iso(shipped), eta=eta.isoformat())
    shipped = placed + max(600.0, min(rng.uniform(0.1, 1.2) * 86400, window * 0.4))
    transit = rng.uniform(method.min_days, method.max_days + 0.9) * 86400
    delivered = shipped + max(600.0, min(transit, (now_ts - shipped) * 0.9))
    return _Timeline(_iso(placed), _iso(shipped), _iso(delivered))


class _OrderWriter:
    """Draws the items of each order so that co-purchases carry signal: devices with the accessory
    made for them, laptops with mice, cameras with backpacks."""

    def __init__(self, rng: random.Random, index: ProductIndex, customers: list[_Customer]) -> None:
        self.rng = rng
        self.index = index
        self.customers = customers
        self.customer_weights = list(accumulate(c.weight for c in customers))
        cat_ix = {c.name: i for i, c in enumerate(CATEGORIES)}
        self.first_cats = [i for i, c in enumerate(CATEGORIES) if c.order_weight and index.by_category[i]]
        self.first_weights = [CATEGORIES[i].order_weight for i in self.first_cats]
        self.any_cats = [i for i in range(len(CATEGORIES)) if index.by_category[i]]
        self.related = [(cat_ix[a], cat_ix[b], p) for a, b, p in RELATED]

    def customer(self) -> _Customer:
        return self.rng.choices(self.customers, cum_weights=self.customer_weights)[0]

    def _popular(self, ci: int) -> int:
        """Earlier lines sell more (anchors most of all), so top-product reports have a clear head."""
        pool = self.index.by_category[ci]
        return pool[int(len(pool) * self.rng.random() ** 2)]

    def items(self) -> list[int]:
        rng = self.rng
        want = _weighted(rng, _ITEMS_PER_ORDER)
        cats = self.first_cats or self.any_cats
        first = self._popular(rng.choices(cats, self.first_weights if self.first_cats else None)[0])
        chosen = [first]
        companion = self.index.companion[first]
        if companion >= 0 and rng.random() < _COMPANION_PROBABILITY:
            chosen.append(companion)
        for a, b, p in self.related:
            if a == self.index.category[first] and self.index.by_category[b] and rng.random() < p:
                chosen.append(self._popular(b))
        while len(chosen) < want:
            chosen.append(self._popular(rng.choice(self.any_cats)))
        return list(dict.fromkeys(chosen))[:4]

    def shipping(self, customer: _Customer) -> ShippingMethod:
        region = customer.country.region
        allowed = [(m, m.weight) for m in SHIPPING_METHODS if region in m.regions]
        return _weighted(self.rng, allowed)

    def payment(self, customer: _Customer, status: str) -> str:
        allowed = [(p.name, p.weight) for p in PAYMENT_METHODS if not p.countries or customer.country.name in p.countries]
        if status == "placed" and self.rng.random() < 0.5:
            return "Bank Transfer"  # placed but not yet paid: most often waiting for a transfer
        return _weighted(self.rng, allowed)

    def unit_price(self, i: int, currency: str) -> Decimal:
        """The list price in the order's currency, converted at a fixed rate when they differ."""
        price = Decimal(self.index.cents[i]) / 100
        listed = "EUR" if self.index.eur[i] else "USD"
        if listed == currency:
            return price
        converted = price * _EUR_PER_USD if currency == "EUR" else price / _EUR_PER_USD
        return converted.quantize(_CENT, ROUND_HALF_UP)

    def quantity(self, unit: Decimal) -> int:
        if unit < 30:
            return self.rng.choice((1, 1, 1, 2, 3))
        return 1 if self.rng.random() < 0.92 else 2

    def discount(self) -> str:
        return self.rng.choice(_DISCOUNTS) if self.rng.random() < 0.12 else "0.00"

    def tracking(self, carrier: str, order_id: int) -> str:
        prefix = _TRACKING_PREFIX[carrier]
        return f"{prefix}{self.rng.randrange(100000, 1000000)}{order_id:08d}{'US' if prefix == 'SP' else ''}"


def _ship_to(rng: random.Random, customer: _Customer, method: ShippingMethod) -> str:
    """Mostly the customer's home; sometimes a second address in the same city (work, a gift);
    the nearest store for pickup orders."""
    if method.name == "Store Pickup":
        return f"Store Pickup, {customer.city} store, {customer.country.name}"
    if rng.random() < 0.9:
        street = customer.address
    else:
        street = f"{rng.randint(1, 240)} {rng.choice(customer.country.streets)}, " \
                 f"{_postal_line(rng, customer.country, customer.city)}"
    return f"{street}, {customer.country.name}"


def _write_orders(out_dir: Path, rng: random.Random, count: int, index: ProductIndex, customers: list[_Customer],
                  today: dt.date) -> tuple[int, int]:
    now = dt.datetime(today.year, today.month, today.day, tzinfo=dt.UTC)
    ages = _ages(rng, count)
    statuses = _statuses(rng, ages)
    draw = _OrderWriter(rng, index, customers)
    items_written = 0
    with _csv_file(out_dir, "orders.csv") as orders, _csv_file(out_dir, "order_items.csv") as items:
        for k in range(count):
            order_id = FIRST_ORDER_ID + k
            status = ORDER_STATUSES[statuses[k]]
            customer = draw.customer()
            currency = customer.country.currency
            method = draw.shipping(customer)
            total = Decimal(0)
            for i in draw.items():
                unit = draw.unit_price(i, currency)
                qty = draw.quantity(unit)
                discount = draw.discount()
                total += qty * unit * (1 - Decimal(discount))
                items.writerow((order_id, index.sku(i), qty, f"{unit:.2f}", discount))
                items_written += 1
            times = _timeline(rng, status, ages[k], now, method)
            sent = status in ("shipped", "delivered", "returned")
            carrier = rng.choice(method.carriers) if sent else ""
            orders.writerow((order_id, customer.customer_id, status, times.placed_at, times.shipped_at,
                             times.delivered_at, times.eta, carrier,
                             draw.tracking(carrier, order_id) if sent else "", method.name,
                             draw.payment(customer, status), _ship_to(rng, customer, method),
                             f"{total.quantize(_CENT, ROUND_HALF_UP):.2f}", currency))
    return count, items_written


# --------------------------------------------------------------------------------------------
# Small tables
# --------------------------------------------------------------------------------------------


def _resolve_applies_to(spec: str, index: ProductIndex) -> str | None:
    """Turn "{anchor:Aurora X2:0}" into "sku:NA-HP-000001"; None when a tiny store lacks that product."""
    parts = []
    for part in filter(None, spec.split(";")):
        if part.startswith("{anchor:"):
            line, variant = part[len("{anchor:"):-1].rsplit(":", 1)
            sku = index.anchor_sku(line, int(variant))
            if sku is None:
                continue
            part = f"sku:{sku}"
        parts.append(part)
    if spec and not parts:
        return None
    return ";".join(parts)


def _policy_rows(index: ProductIndex) -> list[dict[str, Any]]:
    rows = []
    for p in POLICIES:
        applies_to = _resolve_applies_to(p.applies_to, index)
        if applies_to is None:
            continue
        rows.append({"policy_id": p.policy_id, "type": p.type, "title": p.title, "text": p.text, "days": p.days,
                     "fee": p.fee, "applies_to": applies_to or None})
    return rows


def _promotion_rows(index: ProductIndex, today: dt.date) -> list[tuple[Any, ...]]:
    rows = []
    for p in PROMOTIONS:
        applies_to = _resolve_applies_to(p.applies_to, index)
        if applies_to is None:
            continue
        rows.append((p.code, p.description, p.discount_percent, (today + dt.timedelta(days=p.starts)).isoformat(),
                     (today + dt.timedelta(days=p.ends)).isoformat(), applies_to))
    return rows


def _category_rows() -> list[tuple[str, str, str]]:
    return [(c.name, c.parent, c.description) for c in CATEGORIES]


def _shipping_rows() -> list[tuple[Any, ...]]:
    return [(m.name, m.min_days, m.max_days, m.cost, m.free_over, ";".join(m.regions)) for m in SHIPPING_METHODS]


# --------------------------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------------------------


def generate(out_dir: Path, *, products: int = 1000, customers: int = 300, orders: int = 3000, seed: int = 7,
             today: dt.date) -> dict[str, int]:
    """Write the sample store into `out_dir` and return the rows written per file name.

    Each file draws from its own generator seeded from (seed, file), so changing the number of
    orders does not reshuffle the products. `today` anchors order dates and promotion windows and
    is a parameter so that a run is reproducible."""
    if products < 1 or customers < 1 or orders < 0:
        raise ValueError("products and customers must be at least 1, orders at least 0")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    def rng(part: str) -> random.Random:
        return random.Random(f"kgqa-sample:{seed}:{part}")

    counts = {
        "categories.csv": _write_csv(out_dir, "categories.csv", _category_rows()),
        "brands.csv": _write_csv(out_dir, "brands.csv", [(b.name, b.country) for b in BRANDS]),
        "suppliers.csv": _write_csv(out_dir, "suppliers.csv",
                                    [(s.supplier_id, s.name, s.country, s.phone) for s in SUPPLIERS]),
        "shipping_methods.csv": _write_csv(out_dir, "shipping_methods.csv", _shipping_rows()),
        "payment_methods.csv": _write_csv(out_dir, "payment_methods.csv",
                                          [(p.name, p.description) for p in PAYMENT_METHODS]),
    }
    index = _write_products(out_dir, rng("products"), products)
    counts["products.csv"] = len(index)
    people = _write_customers(out_dir, rng("customers"), customers)
    counts["customers.csv"] = len(people)
    counts["orders.csv"], counts["order_items.csv"] = _write_orders(out_dir, rng("orders"), orders, index, people,
                                                                    today)
    counts["promotions.csv"] = _write_csv(out_dir, "promotions.csv", _promotion_rows(index, today))
    counts["policies.jsonl"] = _write_jsonl(out_dir, "policies.jsonl", _policy_rows(index))
    counts["faqs.jsonl"] = _write_jsonl(out_dir, "faqs.jsonl",
                                        [{"question": q, "answer": a, "topic": t} for t, q, a in FAQS])
    return counts


@click.command("sample")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Directory to write the import files into (created if missing).")
@click.option("--products", default=1000, show_default=True, type=click.IntRange(min=1))
@click.option("--customers", default=300, show_default=True, type=click.IntRange(min=1))
@click.option("--orders", default=3000, show_default=True, type=click.IntRange(min=0))
@click.option("--seed", default=7, show_default=True, type=int, help="Same seed and sizes: same files.")
@click.option("--today", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="Date the order history and promotions are relative to (default: the current date).")
def generate_sample_command(out_dir: Path, products: int, customers: int, orders: int, seed: int,
                            today: dt.datetime | None) -> None:
    """Generate the sample store (a made-up shop in the import format) into --out."""
    day = today.date() if today is not None else dt.date.today()
    counts = generate(out_dir, products=products, customers=customers, orders=orders, seed=seed, today=day)
    for name, rows in counts.items():
        click.echo(f"{out_dir / name}: {rows} rows")
