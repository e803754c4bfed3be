// qstrs specific to this port; most are picked up automatically from the sources.
