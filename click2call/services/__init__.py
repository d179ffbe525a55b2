"""Click2call's writes and rules, one module per subject: requests (the banner's), rating,
dialing (attempts, outcomes, retries, call backs), comments."""
