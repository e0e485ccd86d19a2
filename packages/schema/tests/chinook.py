"""A part of the Chinook sample database (a digital media store), for discovery tests.

Follows the published Chinook scripts (lerocha/chinook-database): PascalCase table and
column names (quoted on PostgreSQL, as its script does), integer keys the application
chooses (no AUTO_INCREMENT or SERIAL in the original), NVARCHAR text on MySQL and SQLite,
NUMERIC(10,2) prices, a self reference (``Employee.ReportsTo``), a second foreign key to
``Employee`` (``Customer.SupportRepId``) and a composite-key join table (``PlaylistTrack``).
Nothing here was designed for these tests.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

TABLES = (
    "Artist",
    "Album",
    "Genre",
    "MediaType",
    "Track",
    "Playlist",
    "PlaylistTrack",
    "Employee",
    "Customer",
    "Invoice",
    "InvoiceLine",
)

_TEMPLATE = [
    """CREATE TABLE {q}Artist{q} (
        {q}ArtistId{q} INT NOT NULL,
        {q}Name{q} {text}(120),
        CONSTRAINT {q}PK_Artist{q} PRIMARY KEY ({q}ArtistId{q}))""",
    """CREATE TABLE {q}Album{q} (
        {q}AlbumId{q} INT NOT NULL,
        {q}Title{q} {text}(160) NOT NULL,
        {q}ArtistId{q} INT NOT NULL,
        CONSTRAINT {q}PK_Album{q} PRIMARY KEY ({q}AlbumId{q}),
        CONSTRAINT {q}FK_AlbumArtistId{q} FOREIGN KEY ({q}ArtistId{q})
            REFERENCES {q}Artist{q} ({q}ArtistId{q}))""",
    """CREATE TABLE {q}Genre{q} (
        {q}GenreId{q} INT NOT NULL,
        {q}Name{q} {text}(120),
        CONSTRAINT {q}PK_Genre{q} PRIMARY KEY ({q}GenreId{q}))""",
    """CREATE TABLE {q}MediaType{q} (
        {q}MediaTypeId{q} INT NOT NULL,
        {q}Name{q} {text}(120),
        CONSTRAINT {q}PK_MediaType{q} PRIMARY KEY ({q}MediaTypeId{q}))""",
    """CREATE TABLE {q}Track{q} (
        {q}TrackId{q} INT NOT NULL,
        {q}Name{q} {text}(200) NOT NULL,
        {q}AlbumId{q} INT,
        {q}MediaTypeId{q} INT NOT NULL,
        {q}GenreId{q} INT,
        {q}Composer{q} {text}(220),
        {q}Milliseconds{q} INT NOT NULL,
        {q}Bytes{q} INT,
        {q}UnitPrice{q} NUMERIC(10,2) NOT NULL,
        CONSTRAINT {q}PK_Track{q} PRIMARY KEY ({q}TrackId{q}),
        CONSTRAINT {q}FK_TrackAlbumId{q} FOREIGN KEY ({q}AlbumId{q})
            REFERENCES {q}Album{q} ({q}AlbumId{q}),
        CONSTRAINT {q}FK_TrackGenreId{q} FOREIGN KEY ({q}GenreId{q})
            REFERENCES {q}Genre{q} ({q}GenreId{q}),
        CONSTRAINT {q}FK_TrackMediaTypeId{q} FOREIGN KEY ({q}MediaTypeId{q})
            REFERENCES {q}MediaType{q} ({q}MediaTypeId{q}))""",
    """CREATE TABLE {q}Playlist{q} (
        {q}PlaylistId{q} INT NOT NULL,
        {q}Name{q} {text}(120),
        CONSTRAINT {q}PK_Playlist{q} PRIMARY KEY ({q}PlaylistId{q}))""",
    """CREATE TABLE {q}PlaylistTrack{q} (
        {q}PlaylistId{q} INT NOT NULL,
        {q}TrackId{q} INT NOT NULL,
        CONSTRAINT {q}PK_PlaylistTrack{q} PRIMARY KEY ({q}PlaylistId{q}, {q}TrackId{q}),
        CONSTRAINT {q}FK_PlaylistTrackPlaylistId{q} FOREIGN KEY ({q}PlaylistId{q})
            REFERENCES {q}Playlist{q} ({q}PlaylistId{q}),
        CONSTRAINT {q}FK_PlaylistTrackTrackId{q} FOREIGN KEY ({q}TrackId{q})
            REFERENCES {q}Track{q} ({q}TrackId{q}))""",
    """CREATE TABLE {q}Employee{q} (
        {q}EmployeeId{q} INT NOT NULL,
        {q}LastName{q} {text}(20) NOT NULL,
        {q}FirstName{q} {text}(20) NOT NULL,
        {q}Title{q} {text}(30),
        {q}ReportsTo{q} INT,
        {q}BirthDate{q} {datetime},
        {q}HireDate{q} {datetime},
        {q}Email{q} {text}(60),
        CONSTRAINT {q}PK_Employee{q} PRIMARY KEY ({q}EmployeeId{q}),
        CONSTRAINT {q}FK_EmployeeReportsTo{q} FOREIGN KEY ({q}ReportsTo{q})
            REFERENCES {q}Employee{q} ({q}EmployeeId{q}))""",
    """CREATE TABLE {q}Customer{q} (
        {q}CustomerId{q} INT NOT NULL,
        {q}FirstName{q} {text}(40) NOT NULL,
        {q}LastName{q} {text}(20) NOT NULL,
        {q}Company{q} {text}(80),
        {q}Country{q} {text}(40),
        {q}Email{q} {text}(60) NOT NULL,
        {q}SupportRepId{q} INT,
        CONSTRAINT {q}PK_Customer{q} PRIMARY KEY ({q}CustomerId{q}),
        CONSTRAINT {q}FK_CustomerSupportRepId{q} FOREIGN KEY ({q}SupportRepId{q})
            REFERENCES {q}Employee{q} ({q}EmployeeId{q}))""",
    """CREATE TABLE {q}Invoice{q} (
        {q}InvoiceId{q} INT NOT NULL,
        {q}CustomerId{q} INT NOT NULL,
        {q}InvoiceDate{q} {datetime} NOT NULL,
        {q}BillingCountry{q} {text}(40),
        {q}Total{q} NUMERIC(10,2) NOT NULL,
        CONSTRAINT {q}PK_Invoice{q} PRIMARY KEY ({q}InvoiceId{q}),
        CONSTRAINT {q}FK_InvoiceCustomerId{q} FOREIGN KEY ({q}CustomerId{q})
            REFERENCES {q}Customer{q} ({q}CustomerId{q}))""",
    """CREATE TABLE {q}InvoiceLine{q} (
        {q}InvoiceLineId{q} INT NOT NULL,
        {q}InvoiceId{q} INT NOT NULL,
        {q}TrackId{q} INT NOT NULL,
        {q}UnitPrice{q} NUMERIC(10,2) NOT NULL,
        {q}Quantity{q} INT NOT NULL,
        CONSTRAINT {q}PK_InvoiceLine{q} PRIMARY KEY ({q}InvoiceLineId{q}),
        CONSTRAINT {q}FK_InvoiceLineInvoiceId{q} FOREIGN KEY ({q}InvoiceId{q})
            REFERENCES {q}Invoice{q} ({q}InvoiceId{q}),
        CONSTRAINT {q}FK_InvoiceLineTrackId{q} FOREIGN KEY ({q}TrackId{q})
            REFERENCES {q}Track{q} ({q}TrackId{q}))""",
]

# The types each published script uses; PostgreSQL's quotes its PascalCase names.
_DIALECT = {
    "postgresql": {"q": '"', "text": "VARCHAR", "datetime": "TIMESTAMP"},
    "mysql": {"q": "`", "text": "NVARCHAR", "datetime": "DATETIME"},
    "sqlite": {"q": '"', "text": "NVARCHAR", "datetime": "DATETIME"},
}

_ROWS = [
    "INSERT INTO {q}Artist{q} VALUES (1, 'AC/DC'), (2, 'Accept')",
    "INSERT INTO {q}Album{q} VALUES (1, 'For Those About To Rock We Salute You', 1),"
    " (2, 'Balls to the Wall', 2)",
    "INSERT INTO {q}Genre{q} VALUES (1, 'Rock')",
    "INSERT INTO {q}MediaType{q} VALUES (1, 'MPEG audio file')",
    "INSERT INTO {q}Track{q} VALUES (1, 'For Those About To Rock (We Salute You)', 1, 1, 1,"
    " 'Angus Young, Malcolm Young, Brian Johnson', 343719, 11170334, 0.99),"
    " (2, 'Balls to the Wall', 2, 1, 1, NULL, 342562, 5510424, 0.99)",
    "INSERT INTO {q}Playlist{q} VALUES (1, 'Music')",
    "INSERT INTO {q}PlaylistTrack{q} VALUES (1, 1), (1, 2)",
    "INSERT INTO {q}Employee{q} VALUES (1, 'Adams', 'Andrew', 'General Manager', NULL,"
    " '1962-02-18 00:00:00', '2002-08-14 00:00:00', 'andrew@chinookcorp.com'),"
    " (2, 'Edwards', 'Nancy', 'Sales Manager', 1, '1958-12-08 00:00:00',"
    " '2002-05-01 00:00:00', 'nancy@chinookcorp.com')",
    "INSERT INTO {q}Customer{q} VALUES (1, 'Luís', 'Gonçalves', 'Embraer', 'Brazil',"
    " 'luisg@embraer.com.br', 2)",
    "INSERT INTO {q}Invoice{q} VALUES (1, 1, '2021-01-01 00:00:00', 'Brazil', 1.98)",
    "INSERT INTO {q}InvoiceLine{q} VALUES (1, 1, 1, 0.99, 1), (2, 1, 2, 0.99, 1)",
]


async def drop_chinook(engine: AsyncEngine) -> None:
    """Drop the tables (children first), if present."""
    q = _DIALECT[engine.dialect.name]["q"]
    async with engine.begin() as connection:
        for name in reversed(TABLES):
            await connection.execute(text(f"DROP TABLE IF EXISTS {q}{name}{q}"))


async def create_chinook(engine: AsyncEngine) -> None:
    """Create the tables and a few rows of the published data."""
    await drop_chinook(engine)
    words = _DIALECT[engine.dialect.name]
    async with engine.begin() as connection:
        for statement in _TEMPLATE:
            await connection.execute(text(statement.format(**words)))
        for statement in _ROWS:
            await connection.execute(text(statement.format(**words)))
