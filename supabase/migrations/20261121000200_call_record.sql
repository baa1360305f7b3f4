-- The complete call record: what happened around the conversation (call_events), transcript
-- search for operators, and the fields a finished call carries (outcome, degraded, recording).

create table public.call_events (
  id bigint generated always as identity primary key,
  call_id uuid not null references public.calls (id) on delete cascade,
  sequence integer not null check (sequence >= 0),
  kind text not null,
  detail jsonb not null default '{}'::jsonb,
  occurred_at timestamptz not null default now(),
  unique (call_id, sequence)
);
comment on table public.call_events is
  'Joined, left, errors, policy decisions: one row per event, idempotent on (call_id, sequence).';
create index call_events_kind_idx on public.call_events (kind, occurred_at desc);

alter table public.call_turns
  add column fts tsvector generated always as (to_tsvector('english', coalesce(content, ''))) stored;
create index call_turns_fts_idx on public.call_turns using gin (fts);

alter table public.calls
  add column degraded boolean not null default false,
  add column recording_duration_seconds double precision,
  add constraint calls_outcome_check
    check (outcome is null or outcome in ('resolved', 'escalated', 'abandoned', 'unresolved', 'follow_up'));
create index calls_status_idx on public.calls (status, started_at desc);
create index calls_channel_idx on public.calls (channel, started_at desc);

alter table public.call_events enable row level security;
create policy "own call events: read" on public.call_events for select to authenticated
  using (call_id in (
    select c.id from public.calls c join public.profiles p on p.id = c.profile_id
    where p.firebase_uid = (select auth.jwt() ->> 'sub')
  ));
grant select on public.call_events to authenticated;
grant all on public.call_events to service_role;

-- Operator API (db/call_history.py): the call list pages by keyset on (started_at desc, id desc),
-- so the tie-breaker must be in the index for every page to be an index range scan.
create index calls_started_id_idx on public.calls (started_at desc, id desc);
