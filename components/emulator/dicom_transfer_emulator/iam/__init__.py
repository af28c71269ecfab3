"""IAM rules shared by the emulated APIs (no HTTP): the policy validator."""
