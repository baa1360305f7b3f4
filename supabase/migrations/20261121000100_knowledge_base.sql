-- Knowledge base: documents, their chunks (text, full-text vector, embedding) and hybrid search.
-- Runs unchanged on Supabase, plain Postgres >= 15 with pgvector >= 0.8, and the embedded server.
--
-- Access: the services (postgres / service_role) bypass RLS and do all writes. A signed-in app
-- user may read, directly or through `match_kb_chunks` over RPC, only what their own
-- subscription tier may see: public documents (empty `tiers`) plus those listing their tier
-- (looked up from `profiles` by the Firebase uid in the JWT, so a client cannot claim a higher
-- tier by passing one). Anonymous clients see public documents only.

create table public.kb_documents (
  id uuid primary key default gen_random_uuid(),
  source text not null unique check (source <> ''),
  title text not null,
  content_hash text not null,
  tiers text[] not null default '{}'
    check (tiers <@ array['basic', 'pro', 'enterprise']::text[]),
  metadata jsonb not null default '{}'::jsonb,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
comment on table public.kb_documents is
  'One row per ingested file. source = the path as given to `voicedesk kb ingest`.';
comment on column public.kb_documents.tiers is
  'Subscription tiers that may see the document; empty = everyone, including unidentified callers.';

create table public.kb_chunks (
  id bigint generated always as identity primary key,
  document_id uuid not null references public.kb_documents (id) on delete cascade,
  chunk_index integer not null check (chunk_index >= 0),
  heading text not null default '',
  content text not null,
  fts tsvector generated always as (to_tsvector('english', heading || ' ' || content)) stored,
  -- The dimension follows EMBEDDING_DIMENSIONS: `voicedesk kb ingest` retypes the column (and
  -- rebuilds the index) while the table is empty; kb_embedding_config records what is stored.
  embedding extensions.vector(1536) not null,
  -- A copy of the document's tiers (kept by the triggers below): filtering on a column of the
  -- row the HNSW scan returns keeps search an index scan; a join or subquery made it a seq scan.
  tiers text[] not null default '{}',
  created_at timestamptz not null default now(),
  unique (document_id, chunk_index)
);

create function public.kb_chunks_copy_tiers() returns trigger
language plpgsql set search_path = public as $$
begin
  new.tiers := (select d.tiers from public.kb_documents d where d.id = new.document_id);
  return new;
end
$$;
create trigger kb_chunks_copy_tiers before insert on public.kb_chunks
  for each row execute function public.kb_chunks_copy_tiers();

create function public.kb_documents_propagate_tiers() returns trigger
language plpgsql set search_path = public as $$
begin
  update public.kb_chunks set tiers = new.tiers where document_id = new.id;
  return null;
end
$$;
create trigger kb_documents_propagate_tiers after update of tiers on public.kb_documents
  for each row when (old.tiers is distinct from new.tiers)
  execute function public.kb_documents_propagate_tiers();
comment on table public.kb_chunks is 'Passages of kb_documents, searched by match_kb_chunks().';

create index kb_chunks_fts_idx on public.kb_chunks using gin (fts);
create index kb_chunks_embedding_idx on public.kb_chunks
  using hnsw (embedding extensions.vector_cosine_ops);

create table public.kb_embedding_config (
  id boolean primary key default true check (id),
  model text not null,
  dimensions integer not null check (dimensions > 0),
  updated_at timestamptz not null default now()
);
comment on table public.kb_embedding_config is
  'One row: the embedding model and dimensions of every vector in kb_chunks.embedding.';

-- Hybrid search: the semantic top-N (HNSW, cosine) and the full-text top-N, N = match_count * 4,
-- both already restricted to what the caller's tier may see, fused by reciprocal rank
-- (score = sum of 1 / (rrf_k + rank)). caller_tier NULL = unidentified caller: public documents.
-- relaxed_order lets a filtered HNSW scan keep going until it has N visible rows (pgvector 0.8);
-- the materialized CTE then restores the exact distance order.
create function public.match_kb_chunks(
  query_embedding extensions.vector,
  query_text text,
  caller_tier text,
  match_count integer default 5,
  rrf_k integer default 60
)
returns table (
  chunk_id bigint,
  document_id uuid,
  title text,
  source text,
  heading text,
  content text,
  similarity double precision,
  text_rank double precision,
  score double precision
)
language sql
stable
security invoker
set search_path = public, extensions
set hnsw.iterative_scan = relaxed_order
as $$
  with words as (
    -- All of the query's words (AND). OR-ing them lifted recall@1 on the demo questions by two
    -- points but ranks every chunk sharing any word: 70x slower at 100k chunks (bench/).
    select websearch_to_tsquery('english', query_text) as query
  ),
  semantic_candidates as materialized (
    -- An HNSW index scan filtered on the row's own tiers (iterative scan fills the limit).
    select c.id, c.embedding <=> query_embedding as distance
    from public.kb_chunks c
    where cardinality(c.tiers) = 0 or caller_tier = any (c.tiers)
    order by c.embedding <=> query_embedding
    limit match_count * 4
  ),
  semantic as (
    select id, row_number() over (order by distance) as rank from semantic_candidates
  ),
  full_text as (
    select c.id,
           row_number() over (
             order by ts_rank_cd(c.fts, words.query) desc, c.id
           ) as rank
    from public.kb_chunks c, words
    where c.fts @@ words.query
      and (cardinality(c.tiers) = 0 or caller_tier = any (c.tiers))
    order by rank
    limit match_count * 4
  ),
  fused as (
    select coalesce(s.id, f.id) as id,
           coalesce(1.0 / (rrf_k + s.rank), 0.0) + coalesce(1.0 / (rrf_k + f.rank), 0.0) as score
    from semantic s
    full outer join full_text f on f.id = s.id
  )
  select c.id,
         d.id,
         d.title,
         d.source,
         c.heading,
         c.content,
         1 - (c.embedding <=> query_embedding),
         coalesce(ts_rank_cd(c.fts, words.query), 0)::double precision,
         fused.score::double precision
  from fused
  cross join words
  join public.kb_chunks c on c.id = fused.id
  join public.kb_documents d on d.id = c.document_id
  order by fused.score desc, 1 - (c.embedding <=> query_embedding) desc
  limit match_count
$$;
comment on function public.match_kb_chunks is
  'Hybrid knowledge-base search (HNSW cosine + full text, reciprocal-rank fusion), tier-scoped.';

alter table public.kb_documents enable row level security;
alter table public.kb_chunks enable row level security;
alter table public.kb_embedding_config enable row level security;

create policy "kb documents: public ones for anonymous clients" on public.kb_documents
  for select to anon
  using (cardinality(tiers) = 0);
create policy "kb documents: public ones and those of the user's tier" on public.kb_documents
  for select to authenticated
  using (
    cardinality(tiers) = 0
    or (
      select p.subscription_tier from public.profiles p
      where p.firebase_uid = (select auth.jwt() ->> 'sub')
    ) = any (tiers)
  );
create policy "kb chunks: of visible documents" on public.kb_chunks
  for select to anon, authenticated
  using (document_id in (select id from public.kb_documents));

-- The vector type and its operators live in `extensions` (Supabase grants this already).
grant usage on schema extensions to anon, authenticated, service_role;
grant select on public.kb_documents, public.kb_chunks to anon, authenticated;
grant all on public.kb_documents, public.kb_chunks, public.kb_embedding_config to service_role;
grant usage on all sequences in schema public to service_role;
revoke all on function public.match_kb_chunks from public;
grant execute on function public.match_kb_chunks to anon, authenticated, service_role;
