# tinysense drivers (frozen): `from drivers import mqtt`.
