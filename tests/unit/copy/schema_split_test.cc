// SplitPostData: pg_dump's plain post-data output cut into TOC entries with their waves.
#include <gtest/gtest.h>

#include "tools/initial_copy/schema.h"

namespace pgbaton::tools::copy {
namespace {

// As pg_dump 15.18 writes it (with the \restrict lines of 15.14+).
constexpr const char* kDump = R"(--
-- PostgreSQL database dump
--

\restrict abc123

-- Dumped from database version 15.18
SET statement_timeout = 0;
SET client_encoding = 'UTF8';
SELECT pg_catalog.set_config('search_path', '', false);

--
-- Name: big big_pkey; Type: CONSTRAINT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY public.big
    ADD CONSTRAINT big_pkey PRIMARY KEY (id);


--
-- Name: big_filler; Type: INDEX; Schema: public; Owner: postgres
--

CREATE INDEX big_filler ON public.big USING btree (filler);


--
-- Name: events_2020_pkey; Type: INDEX ATTACH; Schema: public; Owner: postgres
--

ALTER INDEX public.events_pkey ATTACH PARTITION public.events_2020_pkey;


--
-- Name: child child_big_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY public.child
    ADD CONSTRAINT child_big_id_fkey FOREIGN KEY (big_id) REFERENCES public.big(id);


--
-- Name: events_payload; Type: INDEX; Schema: public; Owner: postgres
--

CREATE INDEX events_payload ON ONLY public.events USING btree (payload);


--
-- Name: Shop Data select "i.x"; Type: CONSTRAINT; Schema: Shop Data; Owner: postgres
--

ALTER TABLE ONLY "Shop Data"."select"
    ADD CONSTRAINT "i.x" PRIMARY KEY (id);


--
-- Name: odd; Type: INDEX; Schema: a.b; Owner: postgres
--

CREATE INDEX odd ON "a.b"."t""q u.o" USING btree (id);


--
-- PostgreSQL database dump complete
--

\unrestrict abc123

)";

TEST(SplitPostDataTest, CutsEntriesWithTypesTablesAndWaves) {
  PostData pd = SplitPostData(kDump);
  EXPECT_NE(pd.preamble.find("SET statement_timeout = 0;"), std::string::npos);
  EXPECT_NE(pd.preamble.find("set_config('search_path'"), std::string::npos);
  EXPECT_EQ(pd.preamble.find("restrict"), std::string::npos) << pd.preamble;
  ASSERT_EQ(pd.entries.size(), 7u);

  EXPECT_EQ(pd.entries[0].type, "CONSTRAINT");
  EXPECT_EQ(pd.entries[0].name, "big big_pkey");
  EXPECT_EQ(pd.entries[0].table, (QualifiedName{"public", "big"}));
  EXPECT_EQ(pd.entries[0].wave, 0);
  EXPECT_EQ(pd.entries[0].sql,
            "ALTER TABLE ONLY public.big\n    ADD CONSTRAINT big_pkey PRIMARY KEY (id);");

  EXPECT_EQ(pd.entries[1].type, "INDEX");
  EXPECT_EQ(pd.entries[1].table, (QualifiedName{"public", "big"}));
  EXPECT_EQ(pd.entries[1].wave, 0);

  EXPECT_EQ(pd.entries[2].type, "INDEX ATTACH");
  EXPECT_EQ(pd.entries[2].wave, 1);

  EXPECT_EQ(pd.entries[3].type, "FK CONSTRAINT");
  EXPECT_EQ(pd.entries[3].table, (QualifiedName{"public", "child"}));
  EXPECT_EQ(pd.entries[3].wave, 2);

  EXPECT_EQ(pd.entries[4].table, (QualifiedName{"public", "events"}));
  // The closing comment and \unrestrict are not SQL and must not reach the server.
  EXPECT_EQ(pd.entries[4].sql,
            "CREATE INDEX events_payload ON ONLY public.events USING btree (payload);");

  // Quoted names keep their dots, spaces and quotes: the table is read as SQL, not split at dots.
  EXPECT_EQ(pd.entries[5].table, (QualifiedName{"Shop Data", "select"}));
  EXPECT_EQ(pd.entries[5].wave, 0);
  EXPECT_EQ(pd.entries[6].table, (QualifiedName{"a.b", "t\"q u.o"}));
}

TEST(SplitPostDataTest, EmptyDumpHasNoEntries) {
  PostData pd = SplitPostData("--\n-- PostgreSQL database dump\n--\n\nSET x = 1;\n");
  EXPECT_TRUE(pd.entries.empty());
  EXPECT_EQ(pd.preamble, "SET x = 1;\n");
}

}  // namespace
}  // namespace pgbaton::tools::copy
