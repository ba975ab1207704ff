"""A Spring PetClinic stand-in for the lab: the upstream MySQL schema and sample data, and a small
stdlib web app (`python -m lab.petclinic.app`) configured through the same environment variables
as the real Spring Boot container."""
