-- The agent pool: every worker process and how many calls it has in hand, refreshed each second.
-- LiveKit drops a call that no worker can take, so a full worker keeps a few "overflow" slots;
-- before it uses one to tell a caller that everyone is busy, it asks this table whether another
-- worker still has room (then it declines and LiveKit offers the call to the next worker).

create table public.agent_workers (
  id text primary key check (id <> ''),
  agent_name text not null check (agent_name <> ''),
  calls integer not null check (calls >= 0),
  max_calls integer not null check (max_calls >= 1),
  draining boolean not null default false,
  started_at timestamptz not null default now(),
  seen_at timestamptz not null default now()
);
comment on table public.agent_workers is
  'Live agent workers (id host:pid) and their calls in hand; rows not seen for seconds are stale.';
create index agent_workers_agent_idx on public.agent_workers (agent_name, seen_at desc);

-- Only the services (a role that bypasses RLS) read and write it: no policy for signed-in users.
alter table public.agent_workers enable row level security;
