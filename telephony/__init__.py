"""Phone calls: the LiveKit SIP trunks and dispatch rule that connect the company's Twilio numbers.

LiveKit keeps these objects on its side (in Redis); ``voicedesk sip setup`` creates them from
settings, so a deployment is reproducible from its environment instead of clicks in a console.
"""
