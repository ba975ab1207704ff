"""AWS control plane of the lab: moto in server mode, corrected where it departs from AWS."""
