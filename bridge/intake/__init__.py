"""The Formcycle webhook: authenticate the sender, parse the body strictly, hand it to the intake."""
