-- Phone calls: the numbers on each call, the phone PIN that unlocks account data over the phone,
-- and an index for counting live phone calls (the concurrency policy asks on every inbound call).

alter table public.calls
  add column from_number text check (from_number ~ '^\+?[0-9A-Za-z*#._-]{1,64}$'),
  add column to_number text check (to_number ~ '^\+?[0-9A-Za-z*#._-]{1,64}$');
comment on column public.calls.from_number is 'Calling number of a phone call (E.164 when the carrier gave one).';
comment on column public.calls.to_number is 'Called number: the company number (inbound) or the customer dialled (outbound).';

create index calls_live_idx on public.calls (channel) where ended_at is null;

-- scrypt hash of the PIN (never the PIN): a caller who knows it may hear their account data.
alter table public.user_settings
  add column phone_pin_hash text,
  add column phone_pin_failures integer not null default 0 check (phone_pin_failures >= 0),
  add column phone_pin_locked_until timestamptz;
comment on column public.user_settings.phone_pin_hash is
  'scrypt$<n>$<r>$<p>$<salt hex>$<hash hex> of the phone PIN; set through the settings page.';
comment on column public.user_settings.phone_pin_failures is
  'Wrong PINs in a row, across calls: enough of them lock phone verification for a while.';
