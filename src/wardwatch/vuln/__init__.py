"""Vulnerability intelligence: advisory feeds, SBOM components, version comparison and matching (issue 7;
``versions`` so far)."""
