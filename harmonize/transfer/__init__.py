"""Transfer: patients as concept-state texts, the study's CNN, and the transfer evaluation."""
