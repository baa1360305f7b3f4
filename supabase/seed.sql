-- Demo data for local development (`make dev`, `supabase db reset`). Idempotent.
insert into public.profiles (firebase_uid, phone_e164, display_name, email, subscription_tier,
                             last_interaction_summary, last_interaction_at)
values ('demo-user', '+15555550100', 'Dana Demo', 'dana@example.com', 'pro',
        'Asked how to export invoices; was shown Billing > Export.', now() - interval '3 days')
on conflict (firebase_uid) do nothing;

insert into public.user_settings (profile_id, greeting, language)
select id, 'Hi {name}, thanks for calling Acme support. How can I help?', 'en'
from public.profiles where firebase_uid = 'demo-user'
on conflict (profile_id) do nothing;
