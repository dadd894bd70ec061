// A well-formed module the module cases point at.
@allowed([
  'northeurope'
  'westeurope'
])
param primaryLocation string

output where string = primaryLocation
