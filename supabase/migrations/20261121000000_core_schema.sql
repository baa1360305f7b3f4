-- Core schema: callers, their settings, calls and call turns.
-- Runs unchanged on Supabase (`supabase db push`), plain Postgres >= 15 with pgvector, and the
-- embedded dev server. Row-level security follows Supabase third-party auth with Firebase:
-- the caller is `auth.jwt()->>'sub'` (the Firebase uid), never `auth.uid()` (a uuid).

create schema if not exists extensions;
create extension if not exists vector with schema extensions;

-- Plain Postgres has no Supabase `auth` schema or API roles: provide the same shapes so the
-- policies below mean the same thing everywhere. On Supabase these already exist and are kept.
do $$
begin
  if not exists (select 1 from pg_roles where rolname = 'anon') then
    create role anon nologin noinherit;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'authenticated') then
    create role authenticated nologin noinherit;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'service_role') then
    create role service_role nologin noinherit bypassrls;
  end if;
end
$$;

do $$
begin
  if not exists (
    select 1 from pg_proc p join pg_namespace n on n.oid = p.pronamespace
    where n.nspname = 'auth' and p.proname = 'jwt'
  ) then
    create schema if not exists auth;
    create function auth.jwt() returns jsonb language sql stable as
      $fn$ select coalesce(nullif(current_setting('request.jwt.claims', true), ''), '{}')::jsonb $fn$;
    grant usage on schema auth to anon, authenticated, service_role;
  end if;
end
$$;

create table public.profiles (
  id uuid primary key default gen_random_uuid(),
  firebase_uid text unique check (firebase_uid <> ''),
  phone_e164 text unique check (phone_e164 ~ '^\+[1-9][0-9]{6,14}$'),
  display_name text,
  email text,
  subscription_tier text not null default 'basic'
    check (subscription_tier in ('basic', 'pro', 'enterprise')),
  last_interaction_summary text,
  last_interaction_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
comment on table public.profiles is 'One row per person who calls: a Firebase user, a phone number, or both.';

create table public.user_settings (
  profile_id uuid primary key references public.profiles (id) on delete cascade,
  voice_id text,
  greeting text,
  language text not null default 'en',
  updated_at timestamptz not null default now()
);

create table public.calls (
  id uuid primary key default gen_random_uuid(),
  profile_id uuid references public.profiles (id) on delete set null,
  channel text not null check (channel in ('web', 'pstn_inbound', 'pstn_outbound')),
  direction text not null check (direction in ('inbound', 'outbound')),
  status text not null default 'in_progress'
    check (status in ('pending', 'ringing', 'in_progress', 'completed', 'failed', 'no_answer', 'busy')),
  room_name text not null,
  started_by text,
  started_at timestamptz not null default now(),
  answered_at timestamptz,
  ended_at timestamptz,
  duration_seconds double precision
    generated always as (extract(epoch from (ended_at - started_at))) stored,
  end_reason text,
  summary text,
  outcome text,
  recording_path text,
  metadata jsonb not null default '{}'::jsonb,
  created_at timestamptz not null default now()
);
create index calls_profile_started_idx on public.calls (profile_id, started_at desc);
create index calls_started_idx on public.calls (started_at desc);
create index calls_room_idx on public.calls (room_name);

create table public.call_turns (
  id bigint generated always as identity primary key,
  call_id uuid not null references public.calls (id) on delete cascade,
  sequence integer not null check (sequence >= 0),
  role text not null check (role in ('user', 'assistant', 'tool')),
  content text not null default '',
  started_at timestamptz,
  ended_at timestamptz,
  interrupted boolean not null default false,
  latency jsonb not null default '{}'::jsonb,
  tool_name text,
  tool_arguments jsonb,
  tool_result jsonb,
  created_at timestamptz not null default now(),
  unique (call_id, sequence)
);

-- Row-level security: a signed-in user sees their own profile, settings and calls; the services
-- connect with a role that bypasses RLS.
alter table public.profiles enable row level security;
alter table public.user_settings enable row level security;
alter table public.calls enable row level security;
alter table public.call_turns enable row level security;

create policy "own profile: read" on public.profiles for select to authenticated
  using (firebase_uid = (select auth.jwt() ->> 'sub'));
create policy "own profile: update" on public.profiles for update to authenticated
  using (firebase_uid = (select auth.jwt() ->> 'sub'))
  with check (firebase_uid = (select auth.jwt() ->> 'sub'));

create policy "own settings: all" on public.user_settings for all to authenticated
  using (profile_id in (select id from public.profiles where firebase_uid = (select auth.jwt() ->> 'sub')))
  with check (profile_id in (select id from public.profiles where firebase_uid = (select auth.jwt() ->> 'sub')));

create policy "own calls: read" on public.calls for select to authenticated
  using (profile_id in (select id from public.profiles where firebase_uid = (select auth.jwt() ->> 'sub')));

create policy "own call turns: read" on public.call_turns for select to authenticated
  using (call_id in (
    select c.id from public.calls c join public.profiles p on p.id = c.profile_id
    where p.firebase_uid = (select auth.jwt() ->> 'sub')
  ));

grant usage on schema public to anon, authenticated, service_role;
grant select, update on public.profiles to authenticated;
grant select, insert, update, delete on public.user_settings to authenticated;
grant select on public.calls, public.call_turns to authenticated;
grant all on all tables in schema public to service_role;
