#!/usr/bin/env python3
"""Build the bookshop's import files (DESIGN section 3) into data/.

Every table is written out below: the books (title, author, first publication year and language
of well-known books, written by hand as general knowledge), categories, publishers, editions,
stationery, policies... The ISBNs and ratings are invented by seeded generators, and prices,
stock, customers and orders are drawn from a seeded random generator, so running this script
again writes byte-identical files. No external data set is read.

Plain Python 3, standard library only. Run:  python3 eval/shops/bookshop/build_data.py
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import random
import unicodedata
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
TODAY = dt.date.fromisoformat((HERE / "today.txt").read_text().strip())
SEED = 20261120

# ---------------------------------------------------------------------------------------------
# Categories: name, parent, description
CATEGORIES = [
    ("Books", "", "Printed and digital books"),
    ("Fiction", "Books", "Novels and stories"),
    ("Crime & Mystery", "Fiction", "Detective stories, thrillers and whodunits"),
    ("Science Fiction & Fantasy", "Fiction", "Other worlds, futures and dystopias"),
    ("Literary Fiction", "Fiction", "Contemporary literary novels"),
    ("Classics", "Fiction", "Classic literature"),
    ("Children's Books", "Books", "Picture books, early readers and middle grade"),
    ("Non-fiction", "Books", "Facts, ideas and true stories"),
    ("Popular Science", "Non-fiction", "Science for everyone"),
    ("History & Biography", "Non-fiction", "History, memoirs and biographies"),
    ("Travel", "Non-fiction", "Travel writing"),
    ("Foreign Language", "Books", "Books in French, German, Spanish and Italian"),
    ("E-books", "Books", "Digital editions (EPUB), delivered as a download link"),
    ("Stationery", "", "Paper, pens and desk things"),
    ("Notebooks", "Stationery", "Notebooks, journals and sketchbooks"),
    ("Pens & Pencils", "Stationery", "Writing instruments and refills"),
    ("Cards & Wrapping", "Stationery", "Greeting cards and gift wrap"),
    ("Calendars", "Stationery", "Wall and desk calendars"),
    ("Gifts", "", "Gifts for readers"),
    ("Bookmarks", "Gifts", "Bookmarks"),
    ("Gift Cards", "Gifts", "Marginalia Books gift cards"),
    ("Book Accessories", "Gifts", "Reading lights, bags and bookends"),
]

# Publishers (brands of books) and makers (brands of stationery/gifts): name, country. All fictional.
BRANDS = [
    ("Harbourside Press", "United Kingdom"),
    ("Meridian House", "United States"),
    ("Quillstone Books", "United Kingdom"),
    ("Lanternfield Publishing", "Ireland"),
    ("Foxglove Classics", "United Kingdom"),
    ("Little Acorn Books", "United Kingdom"),
    ("Blue Heron Editions", "United States"),
    ("Éditions du Phare", "France"),
    ("Kompass Verlag", "Germany"),
    ("Editorial Alba", "Spain"),
    ("Edizioni Lanterna", "Italy"),
    ("Papeterie Lumen", "France"),
    ("Inkwell & Co", "United Kingdom"),
    ("Hanami Works", "Japan"),
    ("Fjordpapir", "Norway"),
    ("Brightleaf", "China"),
    ("Marginalia", "Germany"),
]

SUPPLIERS = [
    ("S01", "Rheinland Buchvertrieb GmbH", "Germany", "+49 221 5550 1234"),
    ("S02", "Atlantic Book Wholesale Ltd", "Ireland", "+353 1 555 0187"),
    ("S03", "Diffusion Livres Sud SARL", "France", "+33 4 91 55 50 42"),
    ("S04", "Papyrus Trading B.V.", "Netherlands", "+31 20 555 0199"),
    ("S05", "Carta Regalo S.r.l.", "Italy", "+39 02 5550 3310"),
    ("S06", "Lesefluss Digital GmbH", "Germany", "+49 30 5550 7788"),
]
PUBLISHER_SUPPLIER = {
    "Harbourside Press": "S02", "Quillstone Books": "S02", "Lanternfield Publishing": "S02",
    "Foxglove Classics": "S02", "Little Acorn Books": "S02",
    "Meridian House": "S01", "Blue Heron Editions": "S01", "Kompass Verlag": "S01",
    "Editorial Alba": "S01", "Edizioni Lanterna": "S01", "Éditions du Phare": "S03",
}

# ---------------------------------------------------------------------------------------------
# The books, written by hand for this shop. Title, author(s), year of first publication and the
# language of the edition sold are general knowledge about well-known books; category, publisher,
# format and page count (an approximate printed length; None = not recorded, on purpose) belong to
# the fictional shop. A language left empty ("") is deliberately not recorded. ISBNs and ratings
# are NOT real: they are invented below by seeded generators (see `invented_isbn13`).
# The row order matters: the seeded prices and stock are drawn in this order.
# title, series, author(s), first published, language, category, publisher, base format, pages
CRIME, SFF, LIT, CLASSICS, KIDS = ("Crime & Mystery", "Science Fiction & Fantasy", "Literary Fiction", "Classics",
                                   "Children's Books")
SCI, HIST, TRAVEL, FOREIGN = "Popular Science", "History & Biography", "Travel", "Foreign Language"
BOOKS: list[tuple[str, str, str, int, str, str, str, str, int | None]] = [
    ("And Then There Were None", "", "Agatha Christie", 1939, "English", CRIME, "Harbourside Press", "Paperback", 272),
    ("Murder on the Orient Express", "Hercule Poirot", "Agatha Christie", 1934, "English", CRIME, "Meridian House",
     "Paperback", 256),
    ("The Murder of Roger Ackroyd", "Hercule Poirot", "Agatha Christie", 1926, "English", CRIME, "Harbourside Press",
     "Paperback", 288),
    ("The Murder at the Vicarage", "Miss Marple", "Agatha Christie", 1930, "English", CRIME, "Meridian House",
     "Paperback", 288),
    ("The Girl with the Dragon Tattoo", "Millennium", "Stieg Larsson", 2005, "English", CRIME, "Harbourside Press",
     "Paperback", 672),
    ("Gone Girl", "", "Gillian Flynn", 2012, "English", CRIME, "Meridian House", "Paperback", 432),
    ("The Hound of the Baskervilles", "Sherlock Holmes", "Arthur Conan Doyle", 1902, "English", CRIME,
     "Harbourside Press", "Paperback", 256),
    ("The Adventures of Sherlock Holmes", "Sherlock Holmes", "Arthur Conan Doyle", 1892, "English", CRIME,
     "Meridian House", "Paperback", 336),
    ("The Snowman", "Harry Hole", "Jo Nesbø", 2007, "English", CRIME, "Harbourside Press", "Paperback", 512),
    ("The Da Vinci Code", "Robert Langdon", "Dan Brown", 2003, "English", CRIME, "Meridian House", "Paperback", 592),
    ("The Name of the Rose", "", "Umberto Eco", 1980, "English", CRIME, "Harbourside Press", "Paperback", 560),
    ("The Secret History", "", "Donna Tartt", 1992, "English", CRIME, "Meridian House", "Paperback", 576),
    ("Dune", "Dune", "Frank Herbert", 1965, "English", SFF, "Quillstone Books", "Paperback", 688),
    ("Dune Messiah", "Dune", "Frank Herbert", 1969, "English", SFF, "Meridian House", "Paperback", 336),
    ("The Hobbit", "", "J.R.R. Tolkien", 1937, "English", SFF, "Quillstone Books", "Paperback", 310),
    ("The Fellowship of the Ring", "The Lord of the Rings", "J.R.R. Tolkien", 1954, "English", SFF,
     "Quillstone Books", "Paperback", 432),
    ("A Game of Thrones", "A Song of Ice and Fire", "George R.R. Martin", 1996, "English", SFF, "Meridian House",
     "Paperback", 864),
    ("American Gods", "", "Neil Gaiman", 2001, "English", SFF, "Quillstone Books", "Paperback", 640),
    ("Good Omens: The Nice and Accurate Prophecies of Agnes Nutter, Witch", "", "Terry Pratchett, Neil Gaiman", 1990,
     "English", SFF, "Quillstone Books", "Paperback", 416),
    ("The Colour of Magic", "Discworld", "Terry Pratchett", 1983, "English", SFF, "Meridian House", "Paperback", 288),
    ("Mort", "Discworld", "Terry Pratchett", 1987, "English", SFF, "Quillstone Books", "Paperback", 320),
    ("Neverwhere", "", "Neil Gaiman", 1996, "English", SFF, "Quillstone Books", "Paperback", 400),
    ("1984", "", "George Orwell", 1949, "English", SFF, "Meridian House", "Paperback", 336),
    ("Cien años de soledad", "", "Gabriel García Márquez", 1967, "Spanish", FOREIGN, "Editorial Alba", "Paperback",
     496),
    ("The Handmaid's Tale", "", "Margaret Atwood", 1985, "English", SFF, "Quillstone Books", "Paperback", 320),
    ("Oryx and Crake", "MaddAddam", "Margaret Atwood", 2003, "English", SFF, "Quillstone Books", "Paperback", 448),
    ("The Hunger Games", "The Hunger Games", "Suzanne Collins", 2008, "English", SFF, "Meridian House", "Paperback",
     384),
    ("The Goldfinch", "", "Donna Tartt", 2013, "English", LIT, "Lanternfield Publishing", "Paperback", 880),
    ("Never Let Me Go", "", "Kazuo Ishiguro", 2005, "English", LIT, "Harbourside Press", "Paperback", 288),
    ("The Remains of the Day", "", "Kazuo Ishiguro", 1989, "English", LIT, "Lanternfield Publishing", "Paperback",
     256),
    ("Norwegian Wood", "", "Haruki Murakami", 1987, "English", LIT, "Harbourside Press", "Paperback", 400),
    ("Kafka on the Shore", "", "Haruki Murakami", 2002, "English", LIT, "Lanternfield Publishing", "Paperback", 512),
    ("The Book Thief", "", "Markus Zusak", 2005, "English", LIT, "Harbourside Press", "Paperback", 592),
    ("The Kite Runner", "", "Khaled Hosseini", 2003, "", LIT, "Lanternfield Publishing", "Paperback", 384),
    ("The Alchemist", "", "Paulo Coelho", 1988, "English", LIT, "Harbourside Press", "Paperback", 208),
    ("Life of Pi", "", "Yann Martel", 2001, "English", LIT, "Lanternfield Publishing", "Paperback", 336),
    ("Perfume: The Story of a Murderer", "", "Patrick Süskind", 1985, "English", LIT, "Harbourside Press",
     "Paperback", 272),
    ("The Shadow of the Wind", "The Cemetery of Forgotten Books", "Carlos Ruiz Zafón", 2001, "English", LIT,
     "Lanternfield Publishing", "Paperback", 512),
    ("Pride and Prejudice", "", "Jane Austen", 1813, "English", CLASSICS, "Foxglove Classics", "Paperback", 432),
    ("Sense and Sensibility", "", "Jane Austen", 1811, "English", CLASSICS, "Foxglove Classics", "Paperback", 416),
    ("To Kill a Mockingbird", "", "Harper Lee", 1960, "English", CLASSICS, "Foxglove Classics", "Paperback", 336),
    ("The Great Gatsby", "", "F. Scott Fitzgerald", 1925, "English", CLASSICS, "Foxglove Classics", "Paperback", 192),
    ("Animal Farm", "", "George Orwell", 1945, "English", CLASSICS, "Foxglove Classics", "Paperback", 112),
    ("A Tale of Two Cities", "", "Charles Dickens", 1859, "English", CLASSICS, "Foxglove Classics", "Paperback", 496),
    ("A Christmas Carol", "", "Charles Dickens", 1843, "", CLASSICS, "Foxglove Classics", "Paperback", 112),
    ("Les Misérables", "", "Victor Hugo", 1862, "English", CLASSICS, "Foxglove Classics", "Paperback", 1488),
    ("The Stranger", "", "Albert Camus", 1942, "English", CLASSICS, "Foxglove Classics", "Paperback", 128),
    ("The Metamorphosis", "", "Franz Kafka", 1915, "English", CLASSICS, "Foxglove Classics", "Paperback", 128),
    ("Around the World in Eighty Days", "", "Jules Verne", 1872, "English", CLASSICS, "Foxglove Classics",
     "Paperback", 256),
    ("Twenty Thousand Leagues Under the Sea", "", "Jules Verne", 1870, "English", CLASSICS, "Foxglove Classics",
     "Paperback", 464),
    ("Jane Eyre", "", "Charlotte Brontë", 1847, "English", CLASSICS, "Foxglove Classics", "Paperback", 592),
    ("The Catcher in the Rye", "", "J.D. Salinger", 1951, "English", CLASSICS, "Foxglove Classics", "Paperback", 240),
    ("Romeo and Juliet", "", "William Shakespeare", 1597, "English", CLASSICS, "Foxglove Classics", "Paperback", 336),
    ("Harry Potter and the Philosopher's Stone", "Harry Potter", "J.K. Rowling", 1997, "English", KIDS,
     "Little Acorn Books", "Paperback", 336),
    ("Harry Potter and the Prisoner of Azkaban", "Harry Potter", "J.K. Rowling", 1999, "English", KIDS,
     "Little Acorn Books", "Paperback", 480),
    ("The Little Prince", "", "Antoine de Saint-Exupéry", 1943, "English", KIDS, "Blue Heron Editions", "Paperback",
     96),
    ("Where the Wild Things Are", "", "Maurice Sendak", 1963, "English", KIDS, "Little Acorn Books", "Hardcover", 48),
    ("Matilda", "", "Roald Dahl", 1988, "English", KIDS, "Little Acorn Books", "Paperback", 256),
    ("Charlie and the Chocolate Factory", "", "Roald Dahl", 1964, "English", KIDS, "Blue Heron Editions", "Paperback",
     192),
    ("The BFG", "", "Roald Dahl", 1982, "English", KIDS, "Little Acorn Books", "Paperback", 224),
    ("James and the Giant Peach", "", "Roald Dahl", 1961, "English", KIDS, "Little Acorn Books", "Paperback", 160),
    ("Winnie-the-Pooh", "", "A.A. Milne", 1926, "English", KIDS, "Blue Heron Editions", "Hardcover", 176),
    ("The Cat in the Hat", "", "Dr. Seuss", 1957, "English", KIDS, "Little Acorn Books", "Hardcover", 64),
    ("Green Eggs and Ham", "", "Dr. Seuss", 1960, "English", KIDS, "Little Acorn Books", "Hardcover", 64),
    ("The Lion, the Witch and the Wardrobe", "The Chronicles of Narnia", "C.S. Lewis", 1950, "English", KIDS,
     "Blue Heron Editions", "Paperback", 208),
    ("Inkheart", "Inkworld", "Cornelia Funke", 2003, "English", KIDS, "Little Acorn Books", "Paperback", 560),
    ("Coraline", "", "Neil Gaiman", 2002, "English", KIDS, "Little Acorn Books", "Paperback", None),
    ("The Lightning Thief", "Percy Jackson and the Olympians", "Rick Riordan", 2005, "English", KIDS,
     "Blue Heron Editions", "Paperback", 384),
    ("A Brief History of Time", "", "Stephen Hawking", 1988, "English", SCI, "Blue Heron Editions", "Paperback", 224),
    ("A Short History of Nearly Everything", "", "Bill Bryson", 2003, "English", SCI, "Lanternfield Publishing",
     "Paperback", 624),
    ("Cosmos", "", "Carl Sagan", 1980, "English", SCI, "Blue Heron Editions", "Paperback", 432),
    ("Thinking, Fast and Slow", "", "Daniel Kahneman", 2011, "English", SCI, "Lanternfield Publishing", "Paperback",
     512),
    ("Sapiens: A Brief History of Humankind", "", "Yuval Noah Harari", 2011, "English", HIST, "Meridian House",
     "Paperback", 512),
    ("The Diary of a Young Girl", "", "Anne Frank", 1947, "English", HIST, "Blue Heron Editions", "Paperback", 368),
    ("Dreams from My Father: A Story of Race and Inheritance", "", "Barack Obama", 1995, "English", HIST,
     "Meridian House", "Paperback", 464),
    ("A Walk in the Woods", "", "Bill Bryson", 1998, "English", TRAVEL, "Harbourside Press", "Paperback", 320),
    ("Momo", "", "Michael Ende", 1973, "German", FOREIGN, "Kompass Verlag", "Paperback", None),
    ("Le Petit Nicolas", "Le Petit Nicolas", "René Goscinny", 1959, "French", FOREIGN, "Éditions du Phare",
     "Paperback", 160),
    ("Bonjour tristesse", "", "Françoise Sagan", 1954, "French", FOREIGN, "Éditions du Phare", "Paperback", 192),
    ("Marina", "", "Carlos Ruiz Zafón", 1999, "Spanish", FOREIGN, "Editorial Alba", "Paperback", 304),
    ("Demian", "", "Hermann Hesse", 1919, "German", FOREIGN, "Kompass Verlag", "Paperback", 208),
    ("Novecento", "", "Alessandro Baricco", 1994, "Italian", FOREIGN, "Edizioni Lanterna", "Paperback", 64),
    ("La Vérité sur l'affaire Harry Quebert", "", "Joël Dicker", 2012, "French", FOREIGN, "Éditions du Phare",
     "Paperback", 864),
    ("Er ist wieder da", "", "Timur Vermes", 2012, "German", FOREIGN, "Kompass Verlag", "Paperback", 400),
]

# Second editions of some titles: title -> list of (format, price rule, pages, category override, publisher override)
# price rule "same" = same price as the base edition (a real ambiguity that needs no clarification for price).
EXTRA_EDITIONS = {
    "Dune": [("Hardcover", None, 712, None, None)],
    "Harry Potter and the Philosopher's Stone": [("Hardcover", None, 352, None, None)],
    "Pride and Prejudice": [("Clothbound", None, 480, None, None)],
    "Sapiens: A Brief History of Humankind": [("E-book", None, None, "E-books", None)],
    "The Name of the Rose": [("Hardcover", None, 608, None, None)],
    "A Game of Thrones": [("Hardcover", None, 720, None, None)],
    "The Hobbit": [("Film Tie-in Paperback", "same", 320, None, None)],
    "Murder on the Orient Express": [("Film Tie-in Paperback", "same", 272, None, None)],
    "Thinking, Fast and Slow": [("E-book", None, None, "E-books", None)],
    "1984": [("E-book", None, None, "E-books", None)],
}
# Titles sold in one edition carry the plain title; titles with several editions get "(Format)".
DISCONTINUED_BOOKS = {"The Da Vinci Code"}
NO_ISBN = {"The Metamorphosis", "Norwegian Wood"}  # ISBN deliberately not recorded (unknown-answer cases)
# Seeds of the invented values (separate from SEED, so that prices, stock and orders do not depend on them).
ISBN_SEED, RATING_SEED = 978_2026, 5_2026
# Stationery and gifts: sku, name, brand, category, supplier, price, stock, warranty_months, status,
# pack_size, origin, extra attributes
OTHER_ITEMS = [
    ("ST-NB-01", "Lumen Dotted Notebook A5", "Papeterie Lumen", "Notebooks", "S04", "14.50", 25, "", "active",
     1, "France", {"ruling": "dotted", "size": "A5", "sheets": "96"}),
    ("ST-NB-02", "Lumen Lined Notebook A5", "Papeterie Lumen", "Notebooks", "S04", "14.50", 9, "", "active",
     1, "France", {"ruling": "lined", "size": "A5", "sheets": "96"}),
    ("ST-NB-03", "Lumen Pocket Notebooks", "Papeterie Lumen", "Notebooks", "S04", "9.90", 40, "", "active",
     3, "France", {"ruling": "plain", "size": "A6"}),
    ("ST-NB-04", "Fjord Kraft Sketchbook A4", "Fjordpapir", "Notebooks", "S04", "18.00", 6, "", "active",
     1, "Norway", {"size": "A4", "sheets": "60"}),
    ("ST-NB-05", "Reading Journal", "Marginalia", "Notebooks", "S04", "12.00", 14, "", "active",
     1, "", {"size": "A5"}),
    ("ST-PP-01", "Inkwell Classic Fountain Pen", "Inkwell & Co", "Pens & Pencils", "S04", "39.00", 7, "24", "active",
     1, "Germany", {"colour": "black", "nib": "medium"}),
    ("ST-PP-02", "Inkwell Ink Cartridges Blue (6-pack)", "Inkwell & Co", "Pens & Pencils", "S04", "4.50", 60, "",
     "active", 6, "Germany", {"colour": "blue"}),
    ("ST-PP-03", "Inkwell Gel Pens Set", "Inkwell & Co", "Pens & Pencils", "S04", "7.90", 22, "", "active",
     5, "Japan", {"colour": "assorted"}),
    ("ST-PP-04", "Hanami Graphite Pencils", "Hanami Works", "Pens & Pencils", "S04", "8.50", 31, "",
     "active", 12, "Japan", {"hardness": "HB"}),
    ("ST-PP-05", "Hanami Pastel Highlighters (6-pack)", "Hanami Works", "Pens & Pencils", "S04", "6.90", 0, "",
     "active", 6, "Japan", {"colour": "pastel"}),
    ("ST-CW-01", "Vintage Maps Gift Wrap (3 sheets)", "Marginalia", "Cards & Wrapping", "S05", "5.50", 48, "",
     "active", 3, "Germany", {}),
    ("ST-CW-02", "Literary Quotes Greeting Cards", "Marginalia", "Cards & Wrapping", "S05", "11.00", 17, "",
     "active", 8, "Ireland", {}),
    ("ST-CL-01", "Literary Calendar 2027", "Marginalia", "Calendars", "S05", "16.90", 0, "", "active",
     1, "Germany", {"size": "30 x 30 cm"}),
    ("ST-CL-02", "Literary Calendar 2026", "Marginalia", "Calendars", "S05", "9.90", 0, "", "discontinued",
     1, "Germany", {"size": "30 x 30 cm"}),
    ("GF-BM-01", "Brass Owl Bookmark", "Marginalia", "Bookmarks", "S05", "8.90", 12, "", "active",
     1, "India", {"material": "brass"}),
    ("GF-BM-02", "Tan Leather Bookmark", "Marginalia", "Bookmarks", "S05", "12.50", 0, "", "active",
     1, "Italy", {"material": "leather", "colour": "tan"}),
    ("GF-BM-03", "Magnetic Bookmarks Classics", "Marginalia", "Bookmarks", "S05", "6.50", 35, "", "active",
     6, "United Kingdom", {"material": "paper"}),
    ("GF-GC-01", "Gift Card 25 EUR", "Marginalia", "Gift Cards", "S05", "25.00", None, "", "active",
     None, "", {"delivery": "email"}),
    ("GF-GC-02", "Gift Card 50 EUR", "Marginalia", "Gift Cards", "S05", "50.00", None, "", "active",
     None, "", {"delivery": "email"}),
    ("GF-BA-01", "Brightleaf Clip-on Reading Light", "Brightleaf", "Book Accessories", "S05", "19.90", 15, "12",
     "active", 1, "China", {"power": "2 x AAA batteries"}),
    ("GF-BA-02", "Brightleaf Rechargeable Reading Light", "Brightleaf", "Book Accessories", "S05", "29.90", 4, "24",
     "active", 1, "China", {"power": "USB-C rechargeable"}),
    ("GF-BA-03", "Canvas Tote Bag Read More", "Marginalia", "Book Accessories", "S05", "15.00", 20, "", "active",
     1, "Portugal", {"material": "cotton canvas"}),
    ("GF-BA-04", "Cast Iron Bookends (pair)", "Marginalia", "Book Accessories", "S05", "34.00", 0, "", "discontinued",
     2, "India", {"material": "cast iron"}),
]

POLICIES = [
    {"policy_id": "POL-RET-STORE", "type": "return", "title": "30-day returns",
     "text": "Unused items in their original condition can be returned within 30 days of delivery for a full "
             "refund. Start a return from your account or contact us with your order number.",
     "days": 30, "fee": None, "applies_to": ""},
    {"policy_id": "POL-RET-STAT", "type": "return", "title": "Stationery returns: 14 days",
     "text": "Stationery (notebooks, pens, cards, wrapping, calendars) can be returned unopened within 14 days "
             "of delivery.",
     "days": 14, "fee": None, "applies_to": "category:Stationery"},
    {"policy_id": "POL-RET-EBOOK", "type": "return", "title": "E-books: no returns once downloaded",
     "text": "E-books cannot be returned once the download link has been used. If a file is faulty, contact us "
             "and we will replace it.",
     "days": 0, "fee": None, "applies_to": "category:E-books"},
    {"policy_id": "POL-RET-GIFTCARD", "type": "return", "title": "Gift cards: no returns",
     "text": "Gift cards cannot be returned or exchanged for cash.",
     "days": 0, "fee": None, "applies_to": "category:Gift Cards"},
    {"policy_id": "POL-RET-ACORN", "type": "return", "title": "Little Acorn Books: 60-day returns",
     "text": "Children's books published by Little Acorn Books can be returned within 60 days of delivery, "
             "even if they have been read.",
     "days": 60, "fee": None, "applies_to": "brand:Little Acorn Books"},
    {"policy_id": "POL-REFUND", "type": "refund", "title": "Refunds",
     "text": "Refunds go back to the original payment method within 10 days of the return reaching our "
             "warehouse in Cologne.",
     "days": 10, "fee": None, "applies_to": ""},
    {"policy_id": "POL-WAR-STORE", "type": "warranty", "title": "Printing and binding defects: 1 year",
     "text": "If a book has a printing or binding defect (missing or loose pages, misprints) we replace it "
             "free of charge within 365 days of delivery.",
     "days": 365, "fee": None, "applies_to": ""},
    {"policy_id": "POL-WAR-FOXGLOVE", "type": "warranty", "title": "Foxglove Classics binding guarantee: 5 years",
     "text": "Foxglove Classics guarantees its bindings for 1825 days (5 years) from delivery; a faulty copy is "
             "replaced free of charge.",
     "days": 1825, "fee": None, "applies_to": "brand:Foxglove Classics"},
    {"policy_id": "POL-CANCEL", "type": "cancellation", "title": "Cancelling an order",
     "text": "An order can be cancelled free of charge until it has shipped. Once it has shipped, cancelling "
             "costs a fee of 2.50 EUR to cover the return of the parcel; the rest is refunded. Delivered orders "
             "are returned instead of cancelled.",
     "days": None, "fee": "2.50", "applies_to": ""},
    {"policy_id": "POL-SHIP", "type": "shipping", "title": "Shipping",
     "text": "We ship from Cologne, Germany. Standard delivery (3-5 days, 3.90 EUR, free over 35.00 EUR) goes to "
             "ten EU countries; Express (1-2 days, 9.90 EUR) to Germany, Austria and the Benelux; International "
             "(7-14 days, 14.90 EUR, free over 100.00 EUR) to the United Kingdom, Switzerland, Norway, Sweden, "
             "Denmark, Poland and the United States. Orders can also be collected free of charge from our "
             "Cologne shop.",
     "days": None, "fee": None, "applies_to": ""},
    {"policy_id": "POL-PAY", "type": "payment", "title": "Payment",
     "text": "We accept credit cards (Visa, Mastercard, American Express), PayPal, SEPA bank transfer, Apple Pay "
             "and Marginalia gift cards. Orders paid by bank transfer ship once the payment has arrived.",
     "days": None, "fee": None, "applies_to": ""},
    {"policy_id": "POL-PRIVACY", "type": "privacy", "title": "Privacy",
     "text": "We use your personal data only to process your orders and, if you subscribe, to send our "
             "newsletter. You can ask for a copy or deletion of your data at any time.",
     "days": None, "fee": None, "applies_to": ""},
]

SHIPPING_METHODS = [
    ("Standard", 3, 5, "3.90", "35.00",
     "Germany;Austria;Netherlands;Belgium;Luxembourg;France;Ireland;Spain;Italy;Portugal"),
    ("Express", 1, 2, "9.90", "", "Germany;Austria;Netherlands;Belgium;Luxembourg"),
    ("International", 7, 14, "14.90", "100.00",
     "United Kingdom;Switzerland;Norway;Sweden;Denmark;Poland;United States"),
    ("Store pickup", 0, 1, "0.00", "", "Germany"),
]
PAYMENT_METHODS = [
    ("Credit card", "Visa, Mastercard and American Express"),
    ("PayPal", "Pay with your PayPal account"),
    ("SEPA bank transfer", "Bank transfer in EUR; the order ships once the payment has arrived"),
    ("Apple Pay", "Pay with Apple Pay on supported devices"),
    ("Gift card", "Marginalia Books gift cards, valid for 3 years"),
]
PROMOTIONS = [
    ("BOOKWORM10", "10% off all fiction", "10", "2026-11-01", "2026-12-31", "category:Fiction"),
    ("PAPER15", "15% off stationery", "15", "2026-11-15", "2026-11-30", "category:Stationery"),
    ("ACORN20", "20% off Little Acorn Books children's titles (summer sale)", "20", "2026-08-01", "2026-09-30",
     "brand:Little Acorn Books"),
]
FAQS = [
    ("Do you offer gift wrapping?", "Yes. Tick 'gift wrap' at checkout: each item is wrapped in our Vintage Maps "
     "paper for 3.00 EUR per item, with a handwritten card if you like.", "gifts"),
    ("How do I download an e-book I bought?", "E-books come as EPUB files. The download link is in your order "
     "confirmation email and in your account under 'My e-books'; it works 5 times.", "e-books"),
    ("Can I read your e-books on a Kindle?", "Our e-books are EPUB files without DRM, so they open on most "
     "e-readers and apps; recent Kindle models accept EPUB through Send to Kindle.", "e-books"),
    ("Can I pre-order a book that is not out yet?", "Yes. Pre-orders are charged when the book ships and arrive "
     "on or shortly after the publication day. You can cancel a pre-order free of charge until it ships.",
     "pre-orders"),
    ("How long are gift cards valid?", "Gift cards are valid for 3 years from the date of purchase and can be "
     "used for several orders until the balance is spent.", "gifts"),
    ("How do I create an account?", "Click 'Sign in' and then 'Create account', enter your email address and "
     "choose a password. You can also create one at checkout.", "account"),
    ("I forgot my password, what do I do?", "Use 'Forgot password?' on the sign-in page; we email you a link "
     "that lets you set a new password within 24 hours.", "account"),
    ("Can I collect my order in the shop?", "Yes, choose 'Store pickup' at checkout. We email you when the order "
     "is ready, usually the next working day, and keep it for 14 days at our Cologne shop.", "delivery"),
    ("Do you sell signed copies?", "Sometimes: signed copies are listed as their own edition while stock lasts. "
     "They cannot be reserved.", "products"),
    ("Do you give discounts to schools and reading groups?", "Schools, libraries and reading groups get 10% off "
     "orders of 10 or more copies of one title. Email us for a quote.", "discounts"),
    ("My book arrived damaged, what now?", "Sorry about that! Send us a photo with your order number within 14 "
     "days and we send a replacement at no cost; you do not need to return the damaged copy.", "returns"),
    ("How do I unsubscribe from the newsletter?", "Use the unsubscribe link at the bottom of any newsletter or "
     "untick 'Newsletter' in your account settings.", "account"),
    ("Where is your shop?", "Marginalia Books, Ehrenstrasse 12, 50672 Köln, Germany. Open Monday to Saturday, "
     "10:00 to 19:00.", "contact"),
]

CUSTOMERS = [  # name, city, country, tier
    ("Anna Schmitz", "Köln", "Germany", "gold"), ("Lukas Weber", "Berlin", "Germany", "standard"),
    ("Sophie Becker", "Hamburg", "Germany", "standard"), ("Jonas Hoffmann", "München", "Germany", "member"),
    ("Marie Fischer", "Köln", "Germany", "member"), ("Felix Wagner", "Bonn", "Germany", "standard"),
    ("Lea Neumann", "Leipzig", "Germany", "standard"), ("Paul Schulz", "Köln", "Germany", "gold"),
    ("Emma Gruber", "Wien", "Austria", "member"), ("Tobias Huber", "Graz", "Austria", "standard"),
    ("Sanne de Vries", "Utrecht", "Netherlands", "standard"), ("Daan Jansen", "Amsterdam", "Netherlands", "member"),
    ("Lotte Peeters", "Gent", "Belgium", "standard"), ("Luc Dubois", "Bruxelles", "Belgium", "gold"),
    ("Claire Martin", "Lyon", "France", "member"), ("Julien Bernard", "Paris", "France", "standard"),
    ("Camille Laurent", "Bordeaux", "France", "standard"), ("Aoife Murphy", "Dublin", "Ireland", "gold"),
    ("Ciarán Walsh", "Cork", "Ireland", "standard"), ("Siobhán Byrne", "Galway", "Ireland", "member"),
    ("Lucía García", "Madrid", "Spain", "standard"), ("Javier Fernández", "Valencia", "Spain", "member"),
    ("Giulia Rossi", "Milano", "Italy", "standard"), ("Marco Bianchi", "Torino", "Italy", "gold"),
    ("Inês Costa", "Porto", "Portugal", "standard"), ("Tom Weiss", "Luxembourg", "Luxembourg", "standard"),
    ("Oliver Bennett", "Manchester", "United Kingdom", "member"), ("Hannah Clarke", "Edinburgh", "United Kingdom",
                                                                   "standard"),
    ("Nina Keller", "Zürich", "Switzerland", "gold"), ("Erik Larsen", "Aarhus", "Denmark", "standard"),
    ("Ingrid Solberg", "Bergen", "Norway", "standard"), ("Astrid Lindqvist", "Uppsala", "Sweden", "member"),
    ("Piotr Nowak", "Kraków", "Poland", "standard"), ("Rachel Cohen", "Boston", "United States", "standard"),
    ("Mia Richter", "Düsseldorf", "Germany", "standard"), ("Ben Krüger", "Köln", "Germany", "member"),
    ("Elif Yilmaz", "Frankfurt am Main", "Germany", "standard"), ("Katharina Bauer", "Salzburg", "Austria",
                                                                  "standard"),
    ("Noah Dupont", "Liège", "Belgium", "standard"), ("Chiara Romano", "Bologna", "Italy", "member"),
]
STREETS = ["Lindenstrasse", "Hauptstrasse", "Bahnhofstrasse", "Gartenweg", "Rue des Lilas", "Main Street",
           "Kerkstraat", "Via Roma", "Calle Mayor", "Church Road", "Schillerstrasse", "Park Lane"]


# ---------------------------------------------------------------------------------------------
def money(x) -> str:
    return str(Decimal(str(x)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def isbn13_check_digit(first12: str) -> str:
    return str((10 - sum((1 if i % 2 == 0 else 3) * int(c) for i, c in enumerate(first12)) % 10) % 10)


def invented_isbn13(rng: random.Random, taken: set[str]) -> str:
    """An INVENTED ISBN-13: '978' + nine seeded random digits + a valid check digit.

    These numbers are not the books' real ISBNs; any match with a real book is a coincidence."""
    while True:
        first12 = "978" + "".join(str(rng.randint(0, 9)) for _ in range(9))
        isbn = first12 + isbn13_check_digit(first12)
        if isbn not in taken:
            taken.add(isbn)
            return isbn


def invented_rating(rng: random.Random) -> str:
    """An INVENTED average rating out of 5, with one decimal (3.4 to 4.7)."""
    return f"{rng.randint(34, 47) / 10:.1f}"


def write_csv(name: str, header: list[str], rows: list[list]) -> None:
    with open(DATA / name, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        for r in rows:
            w.writerow(["" if v is None else v for v in r])


def write_jsonl(name: str, rows: list[dict]) -> None:
    with open(DATA / name, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps({k: v for k, v in r.items() if v is not None}, ensure_ascii=False) + "\n")


# ---------------------------------------------------------------------------------------------
def build_products(rng: random.Random) -> list[dict]:
    products: list[dict] = []
    price_lists = {
        "Paperback": ["8.99", "9.99", "10.99", "11.99", "12.99", "13.50", "14.99"],
        "Classic": ["5.99", "6.99", "7.99", "8.50", "9.50"],
        "Hardcover": ["19.99", "22.50", "24.99", "27.00", "29.99"],
        "Picture": ["12.99", "13.99", "15.50"],
        "Clothbound": ["16.99", "18.99"],
        "E-book": ["4.99", "6.99", "8.99", "9.49"],
    }
    isbn_rng, rating_rng = random.Random(ISBN_SEED), random.Random(RATING_SEED)
    taken_isbns: set[str] = set()
    for n, (title, series, author, year, language, cat, pub, fmt, base_pages) in enumerate(BOOKS, start=1):
        isbn_made = invented_isbn13(isbn_rng, taken_isbns)  # drawn for every title, so NO_ISBN shifts nothing
        rating = invented_rating(rating_rng)
        editions = [(fmt, None, base_pages, None, None)] + EXTRA_EDITIONS.get(title, [])
        base_price = None
        for k, (efmt, rule, pages, cat_o, pub_o) in enumerate(editions):
            if rule == "same":
                price = base_price
            elif efmt == "Paperback" and cat == "Classics":
                price = rng.choice(price_lists["Classic"])
            elif efmt == "Hardcover" and cat == "Children's Books" and k == 0:
                price = rng.choice(price_lists["Picture"])
            else:
                price = rng.choice(price_lists["Paperback" if "Paperback" in efmt else efmt])
            if k == 0:
                base_price = price
            code = {"Paperback": "PB", "Hardcover": "HC", "Clothbound": "CB", "E-book": "EB",
                    "Film Tie-in Paperback": "FT"}[efmt]
            sku = f"BK-{n:04d}-{code}"
            name = f"{title} ({efmt})" if len(editions) > 1 else title
            ecat = cat_o or cat
            if efmt == "E-book":
                stock = None
            elif rng.random() < 0.1:
                stock = 0
            else:
                stock = rng.randint(1, 40)
            status = "active"
            if title in DISCONTINUED_BOOKS:
                status, stock = "discontinued", 0
            isbn = isbn_made if k == 0 and title not in NO_ISBN else ""  # only the first edition has one
            extra = {}
            if series:
                extra["series"] = series
            if efmt == "E-book":
                extra["file_format"] = "EPUB"
            desc = f"{efmt} edition of {title} by {author}"
            desc += f", first published in {year}." if year else "."
            if series:
                desc += f" Part of the series {series}."
            products.append({
                "sku": sku, "name": name, "brand": pub_o or pub, "category": ecat,
                "supplier_id": "S06" if efmt == "E-book" else PUBLISHER_SUPPLIER[pub_o or pub],
                "price": price, "currency": "EUR", "stock": stock, "description": desc, "warranty_months": "",
                "rating": rating, "status": status, "attributes": json.dumps(extra, ensure_ascii=False)
                if extra else "",
                "author": author, "isbn": isbn, "pages": pages, "language": language, "format": efmt,
                "publication_year": year, "pack_size": "", "origin": "",
                "_title": title, "_book_no": n,
            })
    for (sku, name, brand, cat, sup, price, stock, war, status, pack, origin, extra) in OTHER_ITEMS:
        products.append({
            "sku": sku, "name": name, "brand": brand, "category": cat, "supplier_id": sup, "price": price,
            "currency": "EUR", "stock": stock, "description": f"{name} by {brand}.", "warranty_months": war,
            "rating": "", "status": status, "attributes": json.dumps(extra, ensure_ascii=False) if extra else "",
            "author": "", "isbn": "", "pages": "", "language": "", "format": "",
            "publication_year": "", "pack_size": pack, "origin": origin, "_title": name, "_book_no": "",
        })
    # a handful of ratings for stationery, so the column is not only books
    for p in products:
        if p["sku"] in ("ST-NB-01", "ST-PP-01", "GF-BA-01"):
            p["rating"] = {"ST-NB-01": "4.6", "ST-PP-01": "4.4", "GF-BA-01": "3.9"}[p["sku"]]
    return products


# Hand-placed orders for situations the random orders may lack (return windows of the category- and
# brand-specific policies, an e-book, a gift card, a parcel that shipped weeks ago and never arrived):
# customer, placed_at, status, shipped_at, shipping method, skus, delivered_at
SCENARIOS = [
    ("C1013", "2026-10-02T10:15:00+00:00", "delivered", "2026-10-03T09:00:00+00:00", "Standard",
     ["BK-0058-PB", "BK-0060-PB"], "2026-10-07T14:20:00+00:00"),
    ("C1022", "2026-11-09T19:40:00+00:00", "delivered", "2026-11-09T19:41:00+00:00", "Standard",
     ["BK-0073-EB"], "2026-11-09T19:45:00+00:00"),
    ("C1003", "2026-11-06T12:05:00+00:00", "delivered", "2026-11-07T08:30:00+00:00", "Standard",
     ["ST-NB-01", "ST-PP-01"], "2026-11-10T11:00:00+00:00"),
    ("C1023", "2026-10-26T16:45:00+00:00", "shipped", "2026-10-27T09:10:00+00:00", "Standard",
     ["BK-0013-HC", "GF-BM-01"], ""),
    ("C1039", "2026-10-30T08:20:00+00:00", "delivered", "2026-10-30T08:21:00+00:00", "Standard",
     ["GF-GC-02"], "2026-10-30T08:25:00+00:00"),
    ("C1016", "2026-09-20T09:00:00+00:00", "delivered", "2026-09-21T10:00:00+00:00", "Standard",
     ["BK-0039-CB"], "2026-09-24T15:30:00+00:00"),
]


def build_orders(rng: random.Random, products: list[dict]):
    ship = {m[0]: m for m in SHIPPING_METHODS}
    cats = {c[0]: c[1] for c in CATEGORIES}

    def top(cat: str) -> str:
        while cats.get(cat):
            cat = cats[cat]
        return cat

    def under(cat: str, anc: str) -> bool:
        while cat:
            if cat == anc:
                return True
            cat = cats.get(cat, "")
        return False

    customers = []
    for i, (name, city, country, tier) in enumerate(CUSTOMERS):
        cid = f"C{1001 + i}"
        first, last = name.split(" ", 1)
        email = f"{first.lower()}.{last.lower().replace(' ', '')}@example.com"
        email = unicodedata.normalize("NFKD", email).encode("ascii", "ignore").decode()
        phone = f"+00 555 {rng.randint(100000, 999999)}"
        street = f"{rng.choice(STREETS)} {rng.randint(1, 120)}"
        postcode = f"{rng.randint(1000, 99999):05d}"
        customers.append({"customer_id": cid, "name": name, "email": email, "phone": phone, "city": city,
                          "country": country, "tier": tier, "_address": f"{street}, {postcode} {city}, {country}"})

    active_books = [p for p in products if p["sku"].startswith("BK-")]
    stationery = [p for p in products if top(p["category"]) == "Stationery"]
    gifts = [p for p in products if top(p["category"]) == "Gifts"]
    start = dt.datetime(2026, 1, 4, tzinfo=dt.UTC)
    end = dt.datetime(2026, 11, 19, 18, 0, tzinfo=dt.UTC)
    n_orders = 200
    recent = 26  # the last week is busier (the season before Christmas), and holds the open orders
    cut = end - dt.timedelta(days=7)
    times = [start + (cut - start) * rng.random() for _ in range(n_orders - recent)]
    times += [cut + (end - cut) * rng.random() for _ in range(recent)]
    # shop hours of the shoppers: 07:00-23:59 UTC
    times = sorted(t.replace(hour=7 + t.hour % 17) if t.hour < 7 else t for t in times)
    orders, items = [], []
    carriers = {"Standard": ["DHL", "DPD", "GLS"], "Express": ["UPS", "DHL Express"],
                "International": ["DHL", "UPS"], "Store pickup": [""]}
    by_sku = {p["sku"]: p for p in products}
    plan = [(t, None) for t in times] + [(dt.datetime.fromisoformat(s[1]), s) for s in SCENARIOS]
    for n, (placed, scen) in enumerate(plan):
        placed = placed.replace(second=0, microsecond=0)
        oid = str(70001 + n)
        cust = customers[rng.randrange(len(customers))] if n >= len(customers) else customers[n]
        if scen:
            cust = next(c for c in customers if c["customer_id"] == scen[0])
        country = cust["country"]
        options = [m for m in SHIPPING_METHODS if country in m[5].split(";")]
        weights = {"Standard": 6, "Express": 2, "International": 6,
                   "Store pickup": 3 if cust["city"] in ("Köln", "Bonn", "Düsseldorf") else 0}
        method = rng.choices([m[0] for m in options], [weights[m[0]] for m in options])[0]
        if scen:
            method = scen[4]
        # items
        kind = rng.random()
        if kind < 0.14:
            pool = stationery
        elif kind < 0.2:
            pool = gifts
        else:
            pool = active_books
        k = rng.choice([1, 1, 1, 2, 2, 3])
        chosen = rng.sample(pool, k)
        if kind >= 0.2 and rng.random() < 0.2:
            chosen.append(rng.choice(stationery + gifts))
        if scen:
            chosen = [by_sku[x] for x in scen[5]]
        seen = set()
        lines = []
        for p in chosen:
            if p["sku"] in seen:
                continue
            seen.add(p["sku"])
            q = 2 if rng.random() < 0.12 else 1
            disc = ""
            d = placed.date()
            if dt.date(2026, 11, 1) <= d <= dt.date(2026, 12, 31) and under(p["category"], "Fiction") \
                    and rng.random() < 0.5:
                disc = "0.1"
            elif dt.date(2026, 11, 15) <= d <= dt.date(2026, 11, 30) and under(p["category"], "Stationery") \
                    and rng.random() < 0.5:
                disc = "0.15"
            elif dt.date(2026, 8, 1) <= d <= dt.date(2026, 9, 30) and p["brand"] == "Little Acorn Books" \
                    and rng.random() < 0.6:
                disc = "0.2"
            if scen:
                q, disc = 1, ""
            lines.append((p, q, disc))
        digital = all(p["category"] in ("E-books", "Gift Cards") for p, _, _ in lines)
        if digital:  # e-books and gift cards are emailed: no shipping method, carrier or fee
            method = ""
        subtotal = sum(Decimal(money(Decimal(p["price"]) * q * (1 - Decimal(disc or "0")))) for p, q, disc in lines)
        _, lo, hi, cost, free_over, _ = ship[method] if method else ("", 0, 0, "0.00", "", "")
        fee = Decimal(cost)
        if free_over and subtotal >= Decimal(free_over):
            fee = Decimal("0")
        total = money(subtotal + fee)
        age = (TODAY - placed.date()).days
        r = rng.random()
        if age <= 2:
            status = "placed" if r < 0.4 else "paid"
        elif age <= 6:
            status = "placed" if r < 0.1 else "paid" if r < 0.35 else "shipped" if r < 0.8 else "delivered"
        elif age <= 20:
            status = "shipped" if r < 0.12 else "cancelled" if r < 0.2 else "returned" if r < 0.25 else "delivered"
        else:
            status = "cancelled" if r < 0.07 else "returned" if r < 0.15 else "delivered"
        if method == "Store pickup" and status == "shipped":
            status = "paid"
        if scen:
            status = scen[2]
        pay = rng.choice([m[0] for m in PAYMENT_METHODS if m[0] != "Gift card"] + ["Credit card", "PayPal"])
        if rng.random() < 0.05:
            pay = "Gift card"
        shipped_at = delivered_at = eta = ""
        carrier = tracking = ""
        if digital and status in ("shipped", "delivered", "returned"):
            status = "delivered" if status == "shipped" else status
            delivered_at = placed + dt.timedelta(minutes=3)
        elif status in ("shipped", "delivered", "returned"):
            if method == "Store pickup":
                ready = placed + dt.timedelta(hours=rng.randint(18, 30))
                collected = ready + dt.timedelta(days=rng.randint(0, 4), hours=rng.randint(1, 5))
                if collected.date() >= TODAY:
                    collected = ready
                delivered_at = collected
            else:
                shipped = placed + dt.timedelta(hours=rng.randint(10, 40))
                if shipped.date() >= TODAY:
                    shipped = placed + dt.timedelta(hours=2)
                shipped_at = shipped
                carrier = rng.choice(carriers[method])
                if scen and scen[3]:
                    shipped_at = shipped = dt.datetime.fromisoformat(scen[3])
                if status in ("delivered", "returned"):
                    delivered = shipped + dt.timedelta(days=rng.randint(lo, hi), hours=rng.randint(1, 8))
                    if scen and scen[6]:
                        delivered = dt.datetime.fromisoformat(scen[6])
                    if delivered.date() >= TODAY:
                        status = "shipped"
                    else:
                        delivered_at = delivered
                eta = (shipped.date() + dt.timedelta(days=hi)).isoformat()
        elif status in ("placed", "paid") and not digital:
            eta = (placed.date() + dt.timedelta(days=hi + 1)).isoformat()
        if carrier:
            if carrier.startswith("DHL"):
                tracking = "00340434" + "".join(str(rng.randint(0, 9)) for _ in range(12))
            elif carrier == "DPD":
                tracking = "0150" + "".join(str(rng.randint(0, 9)) for _ in range(10))
            elif carrier == "GLS":
                tracking = "".join(str(rng.randint(0, 9)) for _ in range(11))
            else:
                tracking = "1Z" + "".join(rng.choice("0123456789ABCDEFGHJKLMNPRSTVWXYZ") for _ in range(16))
        ship_to = cust["_address"] if method != "Store pickup" else "Store pickup, Ehrenstrasse 12, 50672 Köln, Germany"
        if digital:
            ship_to = cust["email"]
        if method != "Store pickup" and rng.random() < 0.08:
            ship_to = f"c/o {rng.choice(['Work', 'Neighbour'])}, {rng.choice(STREETS)} {rng.randint(1, 90)}, " \
                      f"{cust['_address'].split(', ', 1)[1]}"

        def iso(t):
            return t.strftime("%Y-%m-%dT%H:%M:%SZ") if t else ""

        orders.append({"order_id": oid, "customer_id": cust["customer_id"], "status": status,
                       "placed_at": iso(placed), "shipped_at": iso(shipped_at), "delivered_at": iso(delivered_at),
                       "eta": eta, "carrier": carrier, "tracking_number": tracking, "shipping_method": method,
                       "payment_method": pay, "ship_to": ship_to, "total": total, "currency": "EUR"})
        for p, q, disc in lines:
            items.append({"order_id": oid, "sku": p["sku"], "quantity": q, "unit_price": p["price"],
                          "discount": disc})
    return customers, orders, items


def main() -> None:
    rng = random.Random(SEED)
    DATA.mkdir(exist_ok=True)
    products = build_products(rng)
    customers, orders, items = build_orders(rng, products)

    write_csv("categories.csv", ["name", "parent", "description"], [list(c) for c in CATEGORIES])
    write_csv("brands.csv", ["name", "country"], [list(b) for b in BRANDS])
    write_csv("suppliers.csv", ["supplier_id", "name", "country", "phone"], [list(s) for s in SUPPLIERS])
    pcols = ["sku", "name", "brand", "category", "supplier_id", "price", "currency", "stock", "description",
             "warranty_months", "rating", "status", "author", "isbn", "pages", "language", "format",
             "publication_year", "pack_size", "origin", "attributes"]
    write_csv("products.csv", pcols, [[p[c] for c in pcols] for p in products])
    ccols = ["customer_id", "name", "email", "phone", "city", "country", "tier"]
    write_csv("customers.csv", ccols, [[c[k] for k in ccols] for c in customers])
    ocols = ["order_id", "customer_id", "status", "placed_at", "shipped_at", "delivered_at", "eta", "carrier",
             "tracking_number", "shipping_method", "payment_method", "ship_to", "total", "currency"]
    write_csv("orders.csv", ocols, [[o[k] for k in ocols] for o in orders])
    icols = ["order_id", "sku", "quantity", "unit_price", "discount"]
    write_csv("order_items.csv", icols, [[i[k] for k in icols] for i in items])
    write_jsonl("policies.jsonl", POLICIES)
    write_csv("shipping_methods.csv", ["name", "min_days", "max_days", "cost", "free_over", "regions"],
              [list(m) for m in SHIPPING_METHODS])
    write_csv("payment_methods.csv", ["name", "description"], [list(m) for m in PAYMENT_METHODS])
    write_csv("promotions.csv", ["code", "description", "discount_percent", "starts", "ends", "applies_to"],
              [list(p) for p in PROMOTIONS])
    write_jsonl("faqs.jsonl", [{"question": q, "answer": a, "topic": t} for q, a, t in FAQS])
    print(f"products {len(products)}, customers {len(customers)}, orders {len(orders)}, items {len(items)}")


if __name__ == "__main__":
    main()
