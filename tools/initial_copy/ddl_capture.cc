#include "tools/initial_copy/ddl_capture.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "common/sql_ident.h"
#include "tools/initial_copy/catalog.h"

namespace pgbaton::tools::copy {

namespace {

constexpr const char* kFilterKey = "ddl/filter";

// Records what a DROP removes, for the ddl_command_end trigger that follows (same statement).
constexpr const char* kDropFunction = R"SQL(
create or replace function pgbaton.ddl_capture_drop() returns event_trigger
language plpgsql as $pgb$
begin
  perform pg_catalog.set_config('pgbaton.ddl_dropped', coalesce((
    select pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
      'type', d.object_type, 'identity', d.object_identity, 'schema', d.schema_name,
      'relation', case when d.object_type in ('table', 'foreign table', 'view',
                                              'materialized view', 'sequence')
                       then d.address_names[2] end))
    from pg_catalog.pg_event_trigger_dropped_objects() d where d.original), '[]')::text, true);
end
$pgb$)SQL";

// {emit}: how the record leaves (a message, or a row of pgbaton.ddl_log).
constexpr const char* kCaptureFunction = R"SQL(
create or replace function pgbaton.ddl_capture() returns event_trigger
language plpgsql as $pgb$
declare
  objs jsonb;
  dropped text := pg_catalog.current_setting('pgbaton.ddl_dropped', true);
  created text;
  rec jsonb;
begin
  -- Publications and subscriptions belong to the migration's plumbing, not to the schema.
  if tg_tag in ('CREATE PUBLICATION', 'ALTER PUBLICATION', 'DROP PUBLICATION',
                'CREATE SUBSCRIPTION', 'ALTER SUBSCRIPTION', 'DROP SUBSCRIPTION') then
    return;
  end if;
  select coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
      'type', c.object_type, 'identity', c.object_identity, 'schema', c.schema_name,
      'relation', (select case when r.relkind in ('i', 'I')
                               then (select t.relname from pg_catalog.pg_index i
                                     join pg_catalog.pg_class t on t.oid = i.indrelid
                                     where i.indexrelid = r.oid)
                               else r.relname end
                   from pg_catalog.pg_class r
                   where c.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
                     and r.oid = c.objid))), '[]')
    into objs from pg_catalog.pg_event_trigger_ddl_commands() c;
  if dropped is not null and dropped <> '' then
    objs := objs || dropped::jsonb;
    perform pg_catalog.set_config('pgbaton.ddl_dropped', '', true);
  end if;
  -- A statement that changed nothing (CREATE ... IF NOT EXISTS on an existing object, DROP ...
  -- IF EXISTS on a missing one), pgbaton's own objects and temporary ones are never recorded.
  if pg_catalog.jsonb_array_length(objs) = 0 or not exists (
      select 1 from pg_catalog.jsonb_array_elements(objs) o
      where coalesce(o->>'schema', '') <> 'pgbaton' and coalesce(o->>'schema', '') !~ '^pg_temp'
        and not (o->>'type' = 'schema' and o->>'identity' = 'pgbaton')) then
    return;
  end if;
  -- CREATE TABLE AS / SELECT INTO replay as a plain CREATE TABLE: the rows travel as inserts.
  if tg_tag in ('CREATE TABLE AS', 'SELECT INTO') then
    select pg_catalog.format('CREATE %sTABLE %I.%I (%s)',
             case when r.relpersistence = 'u' then 'UNLOGGED ' else '' end, n.nspname, r.relname,
             (select pg_catalog.string_agg(pg_catalog.format('%I %s', a.attname,
                       pg_catalog.format_type(a.atttypid, a.atttypmod)), ', ' order by a.attnum)
              from pg_catalog.pg_attribute a
              where a.attrelid = r.oid and a.attnum > 0 and not a.attisdropped))
      into created
      from pg_catalog.pg_event_trigger_ddl_commands() c
      join pg_catalog.pg_class r on r.oid = c.objid
      join pg_catalog.pg_namespace n on n.oid = r.relnamespace
     where c.classid = 'pg_catalog.pg_class'::pg_catalog.regclass and r.relkind = 'r'
     limit 1;
  end if;
  rec := pg_catalog.jsonb_build_object('v', 1, 'tag', tg_tag,
           'command', pg_catalog.current_query(),
           'search_path', pg_catalog.current_setting('search_path'), 'role', current_user,
           'objects', objs, 'create', created);
  {emit}
end
$pgb$)SQL";

constexpr const char* kEmitMessage =
    "perform pg_catalog.pg_logical_emit_message(true, 'pgbaton_ddl', rec::text);";
constexpr const char* kEmitRow = "insert into pgbaton.ddl_log (payload) values (rec::text);";

}  // namespace

namespace {

Status Install(PgConn& source, const std::string& publication) {
  PGB_ASSIGN_OR_RETURN(std::string super,
                       source.QueryValue("select rolsuper from pg_catalog.pg_roles where "
                                         "rolname = current_user"));
  if (super != "t") {
    return Status::Error(
        ErrorCode::kPermission,
        fmt::format("--ddl replicate: the role connecting to the source ({}) is not a superuser, "
                    "and only a superuser may create the event trigger that captures DDL",
                    source.description()),
        "connect as a superuser (on a managed service, the role its documentation names for "
        "event triggers), or run with --ddl stop and apply schema changes on the target by hand");
  }
  const bool messages = source.ServerMajor() >= 14;
  PGB_ASSIGN_OR_RETURN(std::string have,
                       source.QueryValue("select count(*) from pg_catalog.pg_event_trigger "
                                         "where evtname in ('pgbaton_ddl', 'pgbaton_ddl_drop')"));
  std::string capture = kCaptureFunction;
  capture.replace(capture.find("{emit}"), 6, messages ? kEmitMessage : kEmitRow);
  if (have == "2") {
    // Installed: refresh the functions (DDL on pgbaton's own objects is never recorded).
    PGB_RETURN_IF_ERROR(source.Run(kDropFunction));
    return source.Run(capture);
  }
  // Without the triggers first, so that none of this is recorded (a GRANT names no object).
  PGB_RETURN_IF_ERROR(source.Run(
      "drop event trigger if exists pgbaton_ddl; drop event trigger if exists pgbaton_ddl_drop; "
      "create schema if not exists pgbaton"));
  if (!messages) {
    // Inserts only (never updated): no key needed; writable by anyone whose DDL is recorded.
    PGB_RETURN_IF_ERROR(source.Run(
        "create table if not exists pgbaton.ddl_log (payload text not null, "
        "recorded_at timestamptz not null default now()); "
        "grant usage on schema pgbaton to public; grant insert on pgbaton.ddl_log to public"));
    PGB_ASSIGN_OR_RETURN(
        PgResult pub,
        source.ExecParams(
            "select p.puballtables, exists (select 1 from pg_catalog.pg_publication_tables t "
            "where t.pubname = p.pubname and t.schemaname = 'pgbaton' and "
            "t.tablename = 'ddl_log') from pg_catalog.pg_publication p where p.pubname = $1",
            {publication}));
    if (pub.rows() > 0 && !pub.GetBool(0, 0) && !pub.GetBool(0, 1)) {
      PGB_RETURN_IF_ERROR(source.Run(
          fmt::format("alter publication {} add table pgbaton.ddl_log", QuoteIdent(publication))));
    }
  }
  PGB_RETURN_IF_ERROR(source.Run(kDropFunction));
  PGB_RETURN_IF_ERROR(source.Run(capture));
  PGB_RETURN_IF_ERROR(
      source.Run("create event trigger pgbaton_ddl on ddl_command_end execute function "
                 "pgbaton.ddl_capture(); create event trigger pgbaton_ddl_drop on sql_drop execute "
                 "function pgbaton.ddl_capture_drop()"));
  return Status::Ok();
}

}  // namespace

Status InstallDdlCapture(PgConn& source, const std::string& publication) {
  Status s = Install(source, publication);
  return s.ok() ? s : s.WithContext("installing the ddl capture on source");
}

Status EnsureDdlCapture(const std::string& source_conninfo, const std::string& publication) {
  ConnectOptions co;
  co.label = "source";
  co.application_name = "pgbaton ddl capture";
  PGB_ASSIGN_OR_RETURN(PgConn conn, PgConn::Connect(source_conninfo, co));
  return InstallDdlCapture(conn, publication);
}

Result<std::string> RemoveDdlCapture(PgConn& source) {
  PGB_ASSIGN_OR_RETURN(std::string have,
                       source.QueryValue("select count(*) from pg_catalog.pg_event_trigger "
                                         "where evtname in ('pgbaton_ddl', 'pgbaton_ddl_drop')"));
  PGB_RETURN_IF_ERROR(source.Run(
      "drop event trigger if exists pgbaton_ddl; drop event trigger if exists pgbaton_ddl_drop; "
      "drop function if exists pgbaton.ddl_capture(); "
      "drop function if exists pgbaton.ddl_capture_drop(); "
      "drop table if exists pgbaton.ddl_log"));
  std::string out = have == "0" ? "ddl capture on source: not present"
                                : "ddl capture on source: event triggers dropped";
  PGB_ASSIGN_OR_RETURN(
      std::string left,
      source.QueryValue("select count(*) from pg_catalog.pg_class c join pg_catalog.pg_namespace "
                        "n on n.oid = c.relnamespace where n.nspname = 'pgbaton'"));
  if (left == "0" && source.Run("drop schema if exists pgbaton restrict").ok()) {
    out += "; schema pgbaton dropped";
  }
  return out;
}

Status RecordDdlFilter(queue::WorkQueue* queue, const std::vector<std::string>& include,
                       const std::vector<std::string>& exclude) {
  nlohmann::json j = {{"include", include}, {"exclude", exclude}};
  return queue->PutMeta(kFilterKey, j.dump());
}

Result<std::function<bool(const std::string&, const std::string&)>> LoadDdlFilter(
    queue::WorkQueue* queue) {
  PGB_ASSIGN_OR_RETURN(auto stored, queue->GetMeta(kFilterKey));
  std::function<bool(const std::string&, const std::string&)> none;
  if (!stored) return none;
  nlohmann::json j = nlohmann::json::parse(*stored, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object() || !j["include"].is_array() || !j["exclude"].is_array()) {
    return Status::Error(ErrorCode::kQueueCorrupt,
                         fmt::format("queue metadata \"{}\" is not the copy's filter", kFilterKey));
  }
  auto filter = std::make_shared<TableFilter>(j["include"].get<std::vector<std::string>>(),
                                              j["exclude"].get<std::vector<std::string>>());
  if (!filter->filtering()) return none;
  return std::function<bool(const std::string&, const std::string&)>(
      [filter](const std::string& schema, const std::string& table) {
        return filter->Selects(schema, table);
      });
}

}  // namespace pgbaton::tools::copy
