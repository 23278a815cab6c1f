#include "tests/integration/schema/schema_gen.h"

#include <fmt/format.h>

#include <algorithm>

namespace pgbaton::schema_testing {

namespace {

// A string literal (standard_conforming_strings: only the quote is doubled).
std::string Lit(std::string_view s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') out += '\'';
    out += c;
  }
  return out + "'";
}

std::string Cast(std::string_view text, const std::string& type) { return Lit(text) + "::" + type; }

// An incompressible-enough value of ~9,600 characters: stored out of line (TOASTed).
constexpr const char* kBigText =
    "(select string_agg(md5(random()::text), '') from generate_series(1, 300))";

struct Builtin {
  std::string type;
  std::vector<std::string> texts;  // text forms, cast to `type`
  int min_major = 0;               // the source major that has these values
  bool big = false;
};

std::vector<Builtin> Builtins(int major) {
  std::vector<Builtin> b = {
      {"int4", {"0", "-2147483648", "2147483647"}},
      {"int8", {"-9223372036854775808", "9223372036854775807", "0"}},
      {"numeric", {"NaN", "0", "-0.000000001", "123456789012345678901234567890.123456789"}},
      {"numeric(12,4)", {"-99999999.9999", "0.0001"}},
      {"float8", {"NaN", "Infinity", "-Infinity", "-0", "1e308", "2.2250738585072014e-308"}},
      {"float4", {"NaN", "Infinity", "1.17549435e-38", "-3.4e38"}},
      {"money", {"0", "-92233720368547758.08", "92233720368547758.07", "12.34"}},
      {"bit varying(20)", {"", "1", "10101010101010101010"}},
      {"bit(8)", {"00000000", "11111111"}},
      {"xml", {"<a b=\"c\">it's &amp; \"q\"</a>", "", "just text", "<r><x/><y>ü</y></r>"}},
      {"tsvector", {"", "a:1A b:2", "'it''s':1 'ü' 'with space':3B"}},
      {"tsquery", {"a & !b", "'x y' | z:*"}},
      {"point", {"(0,0)", "(-1.5,1e+100)"}},
      {"line", {"{1,2,3}", "{1,-1,0}"}},
      {"lseg", {"[(0,0),(1,1)]"}},
      {"box", {"(1,1),(0,0)", "(2.5,3),(-1,-1)"}},
      {"path", {"[(0,0),(1,1),(2,0)]", "((0,0),(1,1))"}},
      {"polygon", {"((0,0),(1,1),(1,0))"}},
      {"circle", {"<(0,0),1>", "<(1.5,-2),0.5>"}},
      {"interval",
       {"178000000 years", "-178000000 years", "1 mon -1 days 00:00:00.000001", "0",
        "2147483647 days", "-2147483648 days", "2147483647:59:59.999999"}},
      {"timestamptz",
       {"infinity", "-infinity", "4713-01-01 00:00:00+00 BC", "294276-12-31 23:59:59.999999+00",
        "2000-01-01 00:00:00+00"}},
      {"timestamp", {"infinity", "-infinity", "1999-12-31 23:59:59.999999"}},
      {"date", {"infinity", "-infinity", "4713-01-01 BC", "5874897-12-31"}},
      {"time", {"24:00:00", "00:00:00"}},
      {"timetz", {"00:00:00+14", "23:59:59.999999-12"}},
      {"text", {"", "it's \"quoted\" \\ back", "tab\there\nnewline", "ü∂ 😀", "NULL"}},
      {"bytea", {"\\x", "\\x00ff5c27"}},
      {"jsonb", {"{}", "{\"a\": [1, null, \"x\\\"y\"]}", "null"}},
      {"json", {"{\"a\":1,  \"a\":2}", "[]"}},
      {"uuid", {"00000000-0000-0000-0000-000000000000", "ffffffff-ffff-ffff-ffff-ffffffffffff"}},
      {"inet", {"::1/128", "192.168.0.1/24"}},
      {"cidr", {"10.0.0.0/8", "::/0"}},
      {"macaddr", {"08:00:2b:01:02:03"}},
      {"varchar(10)", {"", "ten chars!"}},
      {"char(3)", {"", "ab"}},
      {"bool", {"true", "false"}},
      {"int4range", {"empty", "[1,10)", "(,)"}},
      {"tsrange", {"[-infinity,infinity]", "empty", "[2000-01-01,2000-01-02)"}},
      {"numrange", {"[1.5,2.5]", "(,0)"}},
      {"int4[]", {"{}", "{1,NULL,3}", "{{1,2},{3,4}}", "[0:1]={1,2}"}},
      {"text[]", {"{}", "{\"a,b\",\"c\\\"d\",NULL,\"NULL\",\"\"}"}},
      {"numeric", {"Infinity", "-Infinity"}, 14},
      // The largest time part an interval holds; 13 refuses it when typed in.
      {"interval", {"2562047788:00:54.775807", "-2562047788:00:54.775807"}, 15},
      {"int4multirange", {"{}", "{[1,3),[5,8)}"}, 14},
      {"text", {}, 0, true},
      {"bytea", {}, 0, true},
  };
  std::erase_if(b, [major](const Builtin& x) { return x.min_major > major; });
  return b;
}

}  // namespace

const std::vector<std::string>& HardNames() {
  static const std::vector<std::string> names = {
      "Shop Data",
      "we\"ird",
      "it's",
      "a.b",
      "back\\slash",
      "MixedCase",
      "user",
      "order",
      "select",
      "ünïcödé",
      "x y.z\"'\\",
      std::string(63, 'l'),  // the 63-byte limit
      [] {                   // 63 bytes of two-byte letters and one 'x'
        std::string s;
        for (int i = 0; i < 31; ++i) s += "ä";
        return s + "x";
      }(),
      "Ω.\"\"",
      "plain",
  };
  return names;
}

SchemaGenerator::SchemaGenerator(uint64_t seed, int source_major)
    : rng_(seed), major_(source_major) {
  // The first schema always has a space (the defect of issue 20); the second is drawn.
  schemas_.push_back("Shop Data");
  used_["schemas"].push_back("Shop Data");
  schemas_.push_back(NewName("schemas"));
  for (const auto& s : schemas_) ddl_.push_back("create schema " + QuoteIdent(s));
  AddTypes();
  for (int i = 0; i < 4; ++i) AddTable(i);
}

std::string SchemaGenerator::Pick(const std::vector<std::string>& v) {
  return v[std::uniform_int_distribution<size_t>(0, v.size() - 1)(rng_)];
}

std::string SchemaGenerator::NewName(const std::string& scope) {
  std::vector<std::string>& used = used_[scope];
  std::vector<std::string> free;
  for (const auto& n : HardNames()) {
    if (std::find(used.begin(), used.end(), n) == used.end()) free.push_back(n);
  }
  std::string name;
  if (!free.empty()) {
    name = Pick(free);
  } else {
    // Short hard names with a number: still spaces, quotes and dots, never over 63 bytes.
    std::vector<std::string> shorter;
    for (const auto& n : HardNames()) {
      if (n.size() < 40) shorter.push_back(n);
    }
    do {
      name = fmt::format("{} {}", Pick(shorter), used.size());
    } while (std::find(used.begin(), used.end(), name) != used.end());
  }
  used.push_back(name);
  return name;
}

void SchemaGenerator::AddTypes() {
  auto where = [&] { return Pick(schemas_); };
  // Types and relations share a namespace per schema (a table has a row type of its name).
  std::string enum_schema = where();
  QualifiedName e{enum_schema, NewName(enum_schema)};
  std::string et = QuoteQualified(e);
  ddl_.push_back("create type " + et +
                 " as enum ('it''s', 'q\"uote', 'a b', 'ü', 'back\\slash', 'MixedCase')");
  // The composite lives in the schema with a space: `$n::Shop Data.x` was the defect.
  QualifiedName c{schemas_[0], NewName(schemas_[0])};
  composite_ = c;
  std::string ct = QuoteQualified(c);
  ddl_.push_back(fmt::format(
      "create type {} as (\"user\" int4, \"a.b\" {}, \"Street Name\" text, n numeric)", ct, et));
  std::string domain_schema = where();
  QualifiedName d{domain_schema, NewName(domain_schema)};
  std::string dt = QuoteQualified(d);
  ddl_.push_back("create domain " + dt + " as text check (value <> 'forbidden')");
  std::string range_schema = where();
  QualifiedName r{range_schema, NewName(range_schema)};
  std::string rt = QuoteQualified(r);
  std::string mrt;
  if (major_ >= 14) {
    QualifiedName mr{range_schema, NewName(range_schema)};
    mrt = QuoteQualified(mr);
    ddl_.push_back(
        fmt::format("create type {} as range (subtype = float8, "
                    "multirange_type_name = {})",
                    rt, mrt));
  } else {
    ddl_.push_back("create type " + rt + " as range (subtype = float8)");
  }

  auto row = [&](const std::string& a, const std::string& b, const std::string& t,
                 const std::string& n) {
    return fmt::format("ROW({}, {}, {}, {})::{}", a, b, t, n, ct);
  };
  type_columns_ = {
      {"", et, {Cast("it's", et), Cast("q\"uote", et), Cast("a b", et), Cast("ü", et)}},
      {"",
       et + "[]",
       {"ARRAY['it''s', 'back\\slash']::" + et + "[]", Cast("{}", et + "[]"),
        "ARRAY[NULL, 'ü']::" + et + "[]"}},
      {"",
       ct,
       {row("NULL", "NULL", "NULL", "NULL"), row("1", Cast("a b", et), Lit("it's \"x\" \\"), "1.5"),
        row("-2147483648", Cast("ü", et), "''", "'NaN'")}},
      {"",
       ct + "[]",
       {fmt::format("ARRAY[{}, NULL]::{}[]", row("2", "NULL", Lit("a,b"), "0"), ct),
        Cast("{}", ct + "[]")}},
      {"", dt, {Cast("ok", dt), Cast("", dt), Cast("forbidden!", dt)}},
      {"", dt + "[]", {"ARRAY['x', '', NULL]::" + dt + "[]", Cast("{}", dt + "[]")}},
      {"",
       rt,
       {Cast("[1.5,2.5)", rt), Cast("empty", rt), Cast("(,)", rt),
        Cast("[-Infinity,Infinity]", rt)}},
      {"",
       rt + "[]",
       {fmt::format("ARRAY[{}, {}]::{}[]", Cast("[1,2)", rt), Cast("empty", rt), rt)}},
  };
  if (!mrt.empty()) {
    type_columns_.push_back({"", mrt, {Cast("{}", mrt), Cast("{[1,2),[3,4)}", mrt)}});
  }
}

void SchemaGenerator::AddTable(int index) {
  GenTable t;
  std::string schema = index == 0 ? schemas_[0] : Pick(schemas_);
  t.name = QualifiedName{schema, NewName(schema)};
  std::string scope = "columns of " + QuoteQualified(t.name);
  t.key = NewName(scope);
  t.sequence = QualifiedName{Pick(schemas_), ""};
  t.sequence.name = NewName(t.sequence.schema);
  sequences_.push_back(t.sequence);
  ddl_.push_back("create sequence " + QuoteQualified(t.sequence));

  // Every built-in type in the first table; a random half of them in the others.
  std::vector<Builtin> builtins = Builtins(major_);
  for (const Builtin& b : builtins) {
    if (index != 0 && rng_() % 2 == 0) continue;
    GenColumn c;
    c.name = NewName(scope);
    c.type_sql = b.type;
    c.big = b.big;
    if (b.big) {
      c.literals = {b.type == "bytea" ? fmt::format("decode({}, 'hex')", kBigText) : kBigText};
    }
    for (const auto& text : b.texts) c.literals.push_back(Cast(text, b.type));
    t.columns.push_back(c);
  }
  for (GenColumn c : type_columns_) {
    c.name = NewName(scope);
    t.columns.push_back(c);
  }
  std::shuffle(t.columns.begin(), t.columns.end(), rng_);

  std::string cols = fmt::format("{} bigint not null default nextval({})", QuoteIdent(t.key),
                                 Lit(QuoteQualified(t.sequence)));
  for (const auto& c : t.columns) cols += fmt::format(", {} {}", QuoteIdent(c.name), c.type_sql);
  std::string table = QuoteQualified(t.name);
  if (index == 1) {
    // Rows identified by a unique index on a NOT NULL column (REPLICA IDENTITY USING INDEX).
    t.unique_not_null = NewName(scope);
    cols += fmt::format(", {} bigint not null generated by default as identity",
                        QuoteIdent(t.unique_not_null));
    ddl_.push_back(
        fmt::format("create table {} ({}, primary key ({}))", table, cols, QuoteIdent(t.key)));
    std::string idx = NewName(t.name.schema);
    ddl_.push_back(fmt::format("create unique index {} on {} ({})", QuoteIdent(idx), table,
                               QuoteIdent(t.unique_not_null)));
    ddl_.push_back(
        fmt::format("alter table {} replica identity using index {}", table, QuoteIdent(idx)));
  } else if (index == 2) {
    // Partitioned by range of the key, in two halves; partitions in either schema.
    t.partitioned = true;
    ddl_.push_back(fmt::format("create table {} ({}, primary key ({})) partition by range ({})",
                               table, cols, QuoteIdent(t.key), QuoteIdent(t.key)));
    for (int p = 0; p < 2; ++p) {
      std::string ps = Pick(schemas_);
      QualifiedName part{ps, NewName(ps)};
      t.partitions.push_back(part);
      ddl_.push_back(fmt::format("create table {} partition of {} for values from ({}) to ({})",
                                 QuoteQualified(part), table, p == 0 ? "MINVALUE" : "1000",
                                 p == 0 ? "1000" : "MAXVALUE"));
    }
  } else if (index == 3) {
    // No key at all: rows are matched on every old value (REPLICA IDENTITY FULL).
    ddl_.push_back(fmt::format("create table {} ({})", table, cols));
    ddl_.push_back(fmt::format("alter table {} replica identity full", table));
  } else {
    ddl_.push_back(
        fmt::format("create table {} ({}, primary key ({}))", table, cols, QuoteIdent(t.key)));
  }
  // A plain index with a hard name on a column that has a btree opclass.
  for (const auto& c : t.columns) {
    if (c.type_sql == "int8" || (c.type_sql == "text" && !c.big)) {
      ddl_.push_back(fmt::format("create index {} on {} ({})", QuoteIdent(NewName(t.name.schema)),
                                 table, QuoteIdent(c.name)));
      break;
    }
  }
  tables_.push_back(std::move(t));
}

std::vector<QualifiedName> SchemaGenerator::LeafTables() const {
  std::vector<QualifiedName> out;
  for (const auto& t : tables_) {
    if (t.partitioned) {
      out.insert(out.end(), t.partitions.begin(), t.partitions.end());
    } else {
      out.push_back(t.name);
    }
  }
  return out;
}

std::vector<QualifiedName> SchemaGenerator::Sequences() const { return sequences_; }

std::string SchemaGenerator::Value(const GenColumn& c) {
  if (rng_() % 100 < 15) return "NULL";
  return Pick(c.literals);
}

std::string SchemaGenerator::Insert(const GenTable& t) {
  std::string names, values;
  for (const auto& c : t.columns) {
    names += (names.empty() ? "" : ", ") + QuoteIdent(c.name);
    values += (values.empty() ? "" : ", ") + Value(c);
  }
  // Keys 1000 and over go to the second partition: keep both in use.
  std::string key = t.partitioned && rng_() % 2 == 0
                        ? fmt::format("1000 + nextval({})", Lit(QuoteQualified(t.sequence)))
                        : "DEFAULT";
  return fmt::format("insert into {} ({}, {}) values ({}, {})", QuoteQualified(t.name),
                     QuoteIdent(t.key), names, key, values);
}

std::string SchemaGenerator::RandomWrite() {
  const GenTable& t = tables_[rng_() % tables_.size()];
  std::string table = QuoteQualified(t.name);
  std::string key = QuoteIdent(t.key);
  std::string some_row = fmt::format("(select {} from {} order by random() limit 1)", key, table);
  int op = static_cast<int>(rng_() % 100);
  if (op < 45) return Insert(t);
  if (op < 80) {
    std::string set;
    int n = 1 + static_cast<int>(rng_() % 3);
    for (int i = 0; i < n; ++i) {
      const GenColumn& c = t.columns[rng_() % t.columns.size()];
      if (set.find(QuoteIdent(c.name) + " =") != std::string::npos) continue;
      set += fmt::format("{}{} = {}", set.empty() ? "" : ", ", QuoteIdent(c.name), Value(c));
    }
    // Sometimes the key itself changes (the old key travels with the update).
    if (!t.partitioned && rng_() % 10 == 0) {
      set += fmt::format(", {} = nextval({})", key, Lit(QuoteQualified(t.sequence)));
    }
    return fmt::format("update {} set {} where {} = {}", table, set, key, some_row);
  }
  return fmt::format("delete from {} where {} = {}", table, key, some_row);
}

}  // namespace pgbaton::schema_testing
