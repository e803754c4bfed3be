# tinysense apps (frozen). Each app has a synchronous processing core (sensor chunk in -> message dicts out)
# that runs anywhere, including the host firmware: apps.soundlevel.SoundLevelApp, apps.har.HarApp.
